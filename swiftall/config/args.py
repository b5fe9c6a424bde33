"""The config mixins. Each owns one concern's fields and checks; commands compose them."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..utils.errors import ConfigError
from .base import BaseConfig, arg

DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTN = ("sdpa", "eager", "flash_attention_2", "flash_attention_3", "flex_attention")


@dataclass
class ModelArgs(BaseConfig):
    model: Optional[str] = arg(None, "Model: a local folder, a .gguf file, a registered name (swiftall model list), "
                               "a Hugging Face id or a ModelScope id", aliases=("model_id_or_path", "model_path"))
    model_type: Optional[str] = arg(None, "Registered model name; alone it selects that model, with --model it names "
                                    "the family/template to use")
    hub: str = arg("huggingface", "Where model ids are fetched from", choices=("huggingface", "modelscope"))
    use_hf: Optional[bool] = arg(None, "ms-swift's switch: true means --hub huggingface, false --hub modelscope")
    revision: Optional[str] = arg(None, "Hub revision (branch, tag or commit) of the model")
    torch_dtype: str = arg("auto", "Weights dtype; auto is bfloat16 on GPUs that support it, else float32",
                           choices=DTYPES, aliases=("dtype",))
    attn_impl: Optional[str] = arg(None, "Attention implementation (default: sdpa)", choices=ATTN)
    use_flash_attn: Optional[bool] = arg(None, "ms-swift's switch for --attn_impl flash_attention_2; on a machine "
                                         "without flash-attn it falls back to sdpa with a note")
    trust_remote_code: bool = arg(False, "Run Python code shipped with a model repo (explicit opt-in)")

    def _check_model_args(self) -> None:
        if self.use_hf is not None:
            self.hub = "huggingface" if self.use_hf else "modelscope"
        if self.use_flash_attn and not self.attn_impl:
            self.attn_impl = "flash_attention_2"


@dataclass
class DataArgs(BaseConfig):
    dataset: list[str] = arg([], "Training data: files (jsonl/json/csv), folders, registered names or hub ids; "
                             "'file#N' samples N rows", aliases=("train_dataset", "custom_train_dataset_path"))
    val_dataset: list[str] = arg([], "Validation data, same forms as --dataset", aliases=("custom_val_dataset_path",))
    split_dataset_ratio: float = arg(0.0, "Fraction of --dataset held out for validation when --val_dataset is empty")
    max_length: int = arg(2048, "Longest encoded row in tokens; longer rows follow --truncation_strategy")
    truncation_strategy: str = arg("delete", "For rows over --max_length: delete (drop, reported), left/right "
                                   "(cut tokens there), error (stop)", choices=("delete", "left", "right", "error"))
    strict: bool = arg(True, "Stop before training on any bad row (true) or skip bad rows and report them (false)")
    columns: dict = arg({}, "Rename columns, as JSON: '{\"q\": \"query\", \"a\": \"response\"}'")
    system: Optional[str] = arg(None, "System prompt for rows that have none (default: the template's own)")
    model_name: list[str] = arg([], "For self-cognition data: the model's name (e.g. 'Swifty')")
    model_author: list[str] = arg([], "For self-cognition data: the model's author (e.g. 'the swiftall team')")
    group_by_length: bool = arg(True, "When batches are padded, batch rows of similar length together so "
                                "little is wasted on padding")
    padding_free: Optional[bool] = arg(None, "Concatenate each batch into one row without pad tokens (attention "
                                       "kept per sample); default: on for registered text model families")
    packing: bool = arg(False, "Pack several samples into rows of --max_length (attention kept per sample)")
    dataset_num_proc: int = arg(1, "Processes used to encode data (datasets' parallel map)", aliases=("num_proc",))
    data_seed: int = arg(42, "Seed for sampling and splitting data")
    streaming: bool = arg(False, "Read and encode data as a stream written to disk (memory-mapped), for data larger "
                          "than memory; 'name#N' then takes the first N rows")
    lazy_tokenize: Optional[bool] = arg(None, "Encode rows only when training asks for them (default: true for "
                                        "multimodal templates, false otherwise)")
    load_from_cache_file: bool = arg(True, "Reuse encoded data cached by an earlier run with the same tokenizer, "
                                     "template, max_length and data")
    dataset_cache_dir: Optional[str] = arg(None, "Where encoded data is cached (default: <swiftall cache>/datasets)")
    custom_dataset_info: list[str] = arg([], "Register your own datasets from a dataset_info.json/.yaml "
                                         "(ms-swift list or LLaMA-Factory mapping)")
    plugin: list[str] = arg([], "Python files run before the data is read; they may call "
                            "swiftall.data.register_dataset", aliases=("external_plugins",))

    def _check_data_args(self) -> None:
        if not 0.0 <= self.split_dataset_ratio < 1.0:
            raise ConfigError(f"--split_dataset_ratio must be in [0, 1), got {self.split_dataset_ratio}")
        if self.max_length < 8:
            raise ConfigError(f"--max_length must be at least 8 tokens, got {self.max_length}")
        if self.dataset_num_proc < 1:
            raise ConfigError(f"--dataset_num_proc must be at least 1, got {self.dataset_num_proc}")


@dataclass
class TunerArgs(BaseConfig):
    train_type: str = arg("lora", "What to train: all weights (full) or a LoRA adapter", choices=("full", "lora"),
                          aliases=("sft_type", "tuner_type"))
    lora_rank: int = arg(8, "LoRA rank r")
    lora_alpha: int = arg(32, "LoRA alpha (scale is alpha / rank)")
    lora_dropout: float = arg(0.05, "Dropout on LoRA inputs", aliases=("lora_dropout_p",))
    target_modules: list[str] = arg(["all-linear"], "Modules to adapt: all-linear, or module names",
                                    aliases=("lora_target_modules",))
    modules_to_save: list[str] = arg([], "Extra modules trained fully and saved with the adapter")
    use_dora: bool = arg(False, "DoRA: weight-decomposed LoRA")
    use_rslora: bool = arg(False, "rsLoRA: scale by alpha / sqrt(rank)")

    def _check_tuner_args(self) -> None:
        if self.lora_rank < 1:
            raise ConfigError(f"--lora_rank must be at least 1, got {self.lora_rank}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"--lora_dropout must be in [0, 1), got {self.lora_dropout}")


@dataclass
class TrainArgs(BaseConfig):
    output_dir: Optional[str] = arg(None, "Where the run writes everything (default: output/<model>-<time>); "
                                    "never overwritten unless --overwrite_output_dir")
    overwrite_output_dir: bool = arg(False, "Allow writing into a non-empty --output_dir")
    num_train_epochs: float = arg(1.0, "Passes over the training data")
    max_steps: int = arg(-1, "Stop after this many optimizer steps (overrides epochs when > 0)")
    per_device_train_batch_size: int = arg(1, "Rows per device per forward pass", aliases=("batch_size",))
    per_device_eval_batch_size: int = arg(1, "Rows per device per evaluation pass")
    gradient_accumulation_steps: int = arg(1, "Forward passes per optimizer step")
    learning_rate: Optional[float] = arg(None, "Peak learning rate (default: 1e-4 for LoRA, 1e-5 for full)")
    lr_scheduler_type: str = arg("cosine", "Learning-rate schedule (any transformers scheduler name)")
    warmup_ratio: float = arg(0.05, "Fraction of steps spent warming the learning rate up")
    weight_decay: float = arg(0.1, "AdamW weight decay")
    max_grad_norm: float = arg(1.0, "Gradient clipping norm")
    gradient_checkpointing: bool = arg(False, "Recompute activations in backward to save memory (slower)")
    save_steps: int = arg(500, "Save a checkpoint every N steps")
    save_total_limit: Optional[int] = arg(None, "Keep at most N checkpoints (oldest removed)")
    save_only_model: bool = arg(False, "Checkpoints without optimizer state (cannot be resumed exactly)")
    eval_steps: Optional[int] = arg(None, "Evaluate every N steps (default: --save_steps) when there is validation data")
    logging_steps: int = arg(5, "Log metrics every N steps")
    seed: int = arg(42, "Random seed")
    resume_from_checkpoint: Optional[str] = arg(None, "A checkpoint-N folder, or a run folder (its latest checkpoint)")
    report_to: list[str] = arg(["tensorboard"], "Loggers: tensorboard, wandb, none",
                               choices=None)
    dataloader_num_workers: int = arg(0, "Worker processes feeding batches")

    def _check_train_args(self) -> None:
        bad = [r for r in self.report_to if r not in ("tensorboard", "wandb", "none", "swanlab", "all")]
        if bad:
            raise ConfigError(f"--report_to: unknown logger {bad[0]!r}; use tensorboard, wandb or none")
        for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "save_steps", "logging_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.max_steps <= 0 and self.num_train_epochs <= 0:
            raise ConfigError("set --num_train_epochs > 0 or --max_steps > 0")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


@dataclass
class AdapterArgs(BaseConfig):
    adapters: list[str] = arg([], "LoRA adapter folders (a run folder or one of its checkpoint-N folders)",
                              aliases=("ckpt_dir",))


@dataclass
class GenerationArgs(BaseConfig):
    max_new_tokens: int = arg(512, "Most tokens generated per answer")
    temperature: Optional[float] = arg(None, "Sampling temperature; 0 is greedy (default: the model's own setting)")
    top_p: Optional[float] = arg(None, "Nucleus sampling threshold")
    top_k: Optional[int] = arg(None, "Sample from the k most likely tokens")
    repetition_penalty: Optional[float] = arg(None, "Penalty for repeated tokens (1.0 is none)")
    stream: bool = arg(False, "Print tokens as they are generated")

    def _check_generation_args(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature is not None and self.temperature < 0:
            raise ConfigError(f"--temperature must be >= 0, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"--top_p must be in (0, 1], got {self.top_p}")


@dataclass
class InferArgs(BaseConfig):
    infer_backend: str = arg("pt", "Inference engine", choices=("pt", "vllm", "sglang", "lmdeploy"))
    result_path: Optional[str] = arg(None, "Batch mode: JSONL written with each input row plus its 'response'")
    max_batch_size: int = arg(16, "Most requests generated together")
    seed: int = arg(42, "Random seed for sampling")


@dataclass
class QueryArgs(BaseConfig):
    query: Optional[str] = arg(None, "Answer this one question, print the answer and exit (instead of the terminal "
                               "chat)")
    images: list[str] = arg([], "Image files or URLs for --query or the terminal chat's first message; <image> tags "
                            "in the text place them, untagged ones go first")
    audios: list[str] = arg([], "Audio files or URLs, like --images (<audio> tags)")
    videos: list[str] = arg([], "Video files, frame folders or URLs, like --images (<video> tags)")

    def media_flags(self) -> dict[str, list[str]]:
        return {k: v for k, v in (("images", self.images), ("audios", self.audios), ("videos", self.videos)) if v}


@dataclass
class ExportArgs(BaseConfig):
    merge_lora: bool = arg(False, "Merge --adapters into the base weights and save a standalone model")
    output_dir: Optional[str] = arg(None, "Where the exported model goes (default: <adapter folder>-merged)")
    overwrite_output_dir: bool = arg(False, "Allow writing into a non-empty --output_dir")
