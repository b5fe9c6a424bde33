from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily("phi3", ("phi3",), template="phi3",
                            architectures=("Phi3ForCausalLM",)))
register_model(ModelMeta("phi3.5-mini-instruct", "phi3", hf_id="microsoft/Phi-3.5-mini-instruct",
                         ms_id="LLM-Research/Phi-3.5-mini-instruct"))
register_model(ModelMeta("phi4-mini-instruct", "phi3", hf_id="microsoft/Phi-4-mini-instruct",
                         ms_id="LLM-Research/Phi-4-mini-instruct"))
