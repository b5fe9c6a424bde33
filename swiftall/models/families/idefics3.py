"""Idefics3 and SmolVLM: a SigLIP vision model, a pixel-shuffle connector and a Llama-style text model."""
from ..registry import ModelFamily, ModelMeta, register_family, register_model

for name, model_type, arch in (("idefics3", "idefics3", "Idefics3ForConditionalGeneration"),
                               ("smolvlm", "smolvlm", "SmolVLMForConditionalGeneration")):
    register_family(ModelFamily(
        name, (model_type,), template="chatml", architectures=(arch,), auto_class="AutoModelForImageTextToText",
        multimodal=True, vision_tower=("model.vision_model",), aligner=("model.connector",),
        language_model=("model.text_model", "lm_head"),
        notes="large images are split into tiles plus a global view; each tile costs its own image tokens"))
register_model(ModelMeta("idefics3-8b-llama3", "idefics3", hf_id="HuggingFaceM4/Idefics3-8B-Llama3",
                         ms_id="AI-ModelScope/Idefics3-8B-Llama3"))
for repo in ("HuggingFaceTB/SmolVLM-256M-Instruct", "HuggingFaceTB/SmolVLM-500M-Instruct",
             "HuggingFaceTB/SmolVLM2-2.2B-Instruct"):
    register_model(ModelMeta(repo.split("/")[1].lower(), "smolvlm", hf_id=repo, ms_id=repo))
