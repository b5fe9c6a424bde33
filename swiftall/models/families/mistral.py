from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily("mistral", ("mistral",), template="mistral",
                            architectures=("MistralForCausalLM",)))
register_model(ModelMeta("mistral-7b-instruct-v0.3", "mistral", hf_id="mistralai/Mistral-7B-Instruct-v0.3",
                         ms_id="LLM-Research/Mistral-7B-Instruct-v0.3"))
