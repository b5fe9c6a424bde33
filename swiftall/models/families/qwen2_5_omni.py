"""Qwen2.5-Omni: the "thinker" (audio encoder, vision encoder, Qwen2.5 LLM) is what trains and answers in text."""
from dataclasses import replace

from ..registry import ModelFamily, ModelMeta, register_family, register_model
from .qwen2_vl import QWEN_BOXES

register_family(ModelFamily(
    "qwen2_5_omni", ("qwen2_5_omni_thinker",), template="chatml",
    architectures=("Qwen2_5OmniThinkerForConditionalGeneration",), auto_class="AutoModelForImageTextToText",
    multimodal=True, vision_tower=("model.visual", "model.audio_tower"),
    aligner=("model.visual.merger", "model.audio_tower.proj"), language_model=("model.language_model", "lm_head"),
    notes="text output only (the speech 'talker' is not trained); images, audio and video",
    grounding=replace(QWEN_BOXES, coords="pixels")))  # Qwen2.5-VL's vision side: pixels of the resized image
for size in ("3b", "7b"):
    repo = f"Qwen/Qwen2.5-Omni-{size.upper()}"
    register_model(ModelMeta(f"qwen2.5-omni-{size}", "qwen2_5_omni", hf_id=repo, ms_id=repo))
