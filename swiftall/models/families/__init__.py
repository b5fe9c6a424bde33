"""Built-in model families, one per file. Importing this package registers them."""
from . import gemma, llama, mistral, phi3, qwen, smollm  # noqa: F401
