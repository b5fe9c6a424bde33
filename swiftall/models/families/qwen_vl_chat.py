"""Qwen-VL-Chat (the original 2023 Qwen-VL): its model and tokenizer code live in the repo (remote code).

It loads only with an explicit --trust_remote_code true; images are written into the prompt as
`Picture N: <img>path</img>` and the repo's own code reads them."""
from ..multimodal import require_remote_code
from ..registry import BoxFormat, ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily(
    "qwen_vl_chat", (), template="chatml",
    auto_class="AutoModelForCausalLM", multimodal=True, vision_tower=("transformer.visual",),
    aligner=("transformer.visual.attn_pool",), language_model=("transformer.h", "transformer.wte", "lm_head"),
    notes="remote code: needs --trust_remote_code true", template_class="qwen_vl_chat",
    grounding=BoxFormat(ref="<ref>{ref}</ref>", box="<box>({x1},{y1}),({x2},{y2})</box>",
                        point="<box>({x},{y})</box>")))  # 0-1000 of the image
require_remote_code("qwen_vl_chat")
register_model(ModelMeta("qwen-vl-chat", "qwen_vl_chat", hf_id="Qwen/Qwen-VL-Chat", ms_id="qwen/Qwen-VL-Chat",
                         aliases=("qwen_vl_chat",)))
