from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily("gemma", ("gemma", "gemma2", "gemma3_text"), template="gemma",
                            architectures=("GemmaForCausalLM", "Gemma2ForCausalLM", "Gemma3ForCausalLM")))
register_model(ModelMeta("gemma2-2b-it", "gemma", hf_id="google/gemma-2-2b-it", ms_id="LLM-Research/gemma-2-2b-it"))
register_model(ModelMeta("gemma3-1b-it", "gemma", hf_id="google/gemma-3-1b-it", ms_id="LLM-Research/gemma-3-1b-it"))
