"""Qwen2-Audio: a Whisper-style audio encoder, a linear projector and Qwen2; audio is resampled to 16 kHz."""
from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily(
    "qwen2_audio", ("qwen2_audio",), template="chatml", architectures=("Qwen2AudioForConditionalGeneration",),
    auto_class="AutoModelForMultimodalLM", multimodal=True, vision_tower=("model.audio_tower",),
    aligner=("model.multi_modal_projector",), language_model=("model.language_model", "lm_head"),
    notes="audio only; --freeze_vit freezes the audio encoder"))
register_model(ModelMeta("qwen2-audio-7b-instruct", "qwen2_audio", hf_id="Qwen/Qwen2-Audio-7B-Instruct",
                         ms_id="Qwen/Qwen2-Audio-7B-Instruct"))
