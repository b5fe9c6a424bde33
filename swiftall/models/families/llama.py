from ..registry import ModelFamily, ModelMeta, register_family, register_model

LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

register_family(ModelFamily("llama", ("llama",), template="llama3", lora_targets=LINEAR,
                            architectures=("LlamaForCausalLM",)))
for name, hf in [("llama3.2-1b-instruct", "meta-llama/Llama-3.2-1B-Instruct"),
                 ("llama3.2-3b-instruct", "meta-llama/Llama-3.2-3B-Instruct"),
                 ("llama3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct")]:
    register_model(ModelMeta(name, "llama", hf_id=hf, ms_id=hf.replace("meta-llama/", "LLM-Research/")))
