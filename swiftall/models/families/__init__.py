"""Built-in model families, one per file. Importing this package registers them."""
from . import gemma, llama, mistral, phi3, qwen, smollm  # noqa: F401
from . import (gemma3_vl, idefics3, internvl, llava, llava_next, qwen2_5_omni, qwen2_5_vl, qwen2_audio,  # noqa: F401
               qwen2_vl, qwen3_vl, qwen_vl_chat)
