from ..registry import ModelFamily, ModelMeta, register_family, register_model

register_family(ModelFamily("qwen2", ("qwen2",), template="chatml",
                            architectures=("Qwen2ForCausalLM",)))
register_family(ModelFamily("qwen3", ("qwen3",), template="chatml",
                            architectures=("Qwen3ForCausalLM",),
                            notes="thinking models: history turns drop <think> blocks"))
for name, family, repo in [("qwen2-0.5b-instruct", "qwen2", "Qwen/Qwen2-0.5B-Instruct"),
                           ("qwen2.5-0.5b-instruct", "qwen2", "Qwen/Qwen2.5-0.5B-Instruct"),
                           ("qwen2.5-1.5b-instruct", "qwen2", "Qwen/Qwen2.5-1.5B-Instruct"),
                           ("qwen2.5-7b-instruct", "qwen2", "Qwen/Qwen2.5-7B-Instruct"),
                           ("qwen3-0.6b", "qwen3", "Qwen/Qwen3-0.6B"),
                           ("qwen3-8b", "qwen3", "Qwen/Qwen3-8B")]:
    register_model(ModelMeta(name, family, hf_id=repo, ms_id=repo))
