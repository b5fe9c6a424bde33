from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily("mistral", ("mistral",), template="mistral",
                            lora_targets=("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
                            architectures=("MistralForCausalLM",)))
register_model(ModelMeta("mistral-7b-instruct-v0.3", "mistral", hf_id="mistralai/Mistral-7B-Instruct-v0.3",
                         ms_id="LLM-Research/Mistral-7B-Instruct-v0.3"))
