"""LLaVA-NeXT (1.6): LLaVA with any-resolution tiling; `image_newline` belongs to the aligner."""
from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily(
    "llava_next", ("llava_next",), template="chatml", architectures=("LlavaNextForConditionalGeneration",),
    auto_class="AutoModelForImageTextToText", multimodal=True, vision_tower=("model.vision_tower",),
    aligner=("model.multi_modal_projector", "model.image_newline"),
    language_model=("model.language_model", "lm_head")))
register_model(ModelMeta("llava-v1.6-mistral-7b", "llava_next", hf_id="llava-hf/llava-v1.6-mistral-7b-hf",
                         ms_id="llava-hf/llava-v1.6-mistral-7b-hf"))
