"""InternVL (transformers-native "-hf" checkpoints): InternViT, a pixel-shuffle MLP projector, Qwen2/InternLM."""
from ..registry import BoxFormat, ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily(
    "internvl", ("internvl",), template="chatml", architectures=("InternVLForConditionalGeneration",),
    auto_class="AutoModelForImageTextToText", multimodal=True, vision_tower=("model.vision_tower",),
    aligner=("model.multi_modal_projector",), language_model=("model.language_model", "lm_head"),
    notes="use the OpenGVLab/*-hf checkpoints; the original ones need remote code",
    grounding=BoxFormat(ref="<ref>{ref}</ref>", box="<box>[[{x1}, {y1}, {x2}, {y2}]]</box>",
                        point="<box>[[{x}, {y}]]</box>")))  # 0-1000 of the image
for size in ("1b", "2b", "8b"):
    repo = f"OpenGVLab/InternVL3-{size.upper()}-hf"
    register_model(ModelMeta(f"internvl3-{size}", "internvl", hf_id=repo, ms_id=repo))
