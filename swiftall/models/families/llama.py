from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily("llama", ("llama",), template="llama3",
                            architectures=("LlamaForCausalLM",)))
for name, hf in [("llama3.2-1b-instruct", "meta-llama/Llama-3.2-1B-Instruct"),
                 ("llama3.2-3b-instruct", "meta-llama/Llama-3.2-3B-Instruct"),
                 ("llama3.1-8b-instruct", "meta-llama/Llama-3.1-8B-Instruct")]:
    register_model(ModelMeta(name, "llama", hf_id=hf, ms_id=hf.replace("meta-llama/", "LLM-Research/")))
