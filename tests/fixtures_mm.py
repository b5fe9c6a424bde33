"""Tiny random multimodal models, built from configs with processors assembled locally (no downloads).

Each builder writes a Hugging Face folder (config, weights, tokenizer, processor) that `AutoProcessor` and the
family's Auto class load back, using SmolLM2's real tokenizer plus the family's special tokens.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            max_position_embeddings=4096)
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)


def chatml_parts(image: str = "<image>", video: str = "<video>", audio: str = "<audio>") -> str:
    """A ChatML chat template over content parts, emitting the family's placeholder for each media part."""
    return (
        "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
        "{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}" + image + "{% elif part['type'] == 'video' %}" + video +
        "{% elif part['type'] == 'audio' %}" + audio + "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
        "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _tokenizer(smol_dir: Path, tokens: list[str] = (), named: dict[str, str] | None = None):
    from transformers import AutoTokenizer

    kwargs = {"extra_special_tokens": named} if named else {}
    tok = AutoTokenizer.from_pretrained(smol_dir, **kwargs)
    if tokens:
        tok.add_special_tokens({"additional_special_tokens": list(tokens)}, replace_extra_special_tokens=False)
    return tok


def _text_config(tok, **extra) -> dict:
    return dict(TEXT, vocab_size=len(tok), bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                pad_token_id=tok.pad_token_id, tie_word_embeddings=True, **extra)


def _save(model, processor, out: Path) -> Path:
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out


# ---- families -------------------------------------------------------------------------------------
def qwen2_vl(smol_dir: Path, out: Path, kind: str = "qwen2_vl", **text) -> Path:
    """`text`: overrides of the language model's config (e.g. num_key_value_heads=4 for GPTQ's CPU kernel, which
    needs output sizes that are multiples of 32)."""
    import transformers as tf
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    tok = _tokenizer(smol_dir, ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"])
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in (("image_token_id", "<|image_pad|>"),
           ("video_token_id", "<|video_pad|>"), ("vision_start_token_id", "<|vision_start|>"),
           ("vision_end_token_id", "<|vision_end|>"))}
    patch = 16 if kind == "qwen3_vl" else 14
    pixels = dict(min_pixels=(2 * patch) ** 2, max_pixels=(8 * patch) ** 2)
    rope = {"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0}
    if kind == "qwen3_vl":
        rope["mrope_interleaved"] = True
        vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=16,
                      deepstack_visual_indexes=[0], num_position_embeddings=64)
        config = tf.Qwen3VLConfig(text_config=_text_config(tok, head_dim=8, rope_parameters=rope), vision_config=vision,
                                  **ids)
        model = tf.Qwen3VLForConditionalGeneration(config)
        image_proc = tf.Qwen2VLImageProcessor(patch_size=16, merge_size=2, temporal_patch_size=2, **pixels)
        video_proc = tf.models.qwen3_vl.video_processing_qwen3_vl.Qwen3VLVideoProcessor(
            patch_size=16, merge_size=2, temporal_patch_size=2, size={"shortest_edge": pixels["min_pixels"],
                                                                      "longest_edge": pixels["max_pixels"] * 4})
        processor_cls = tf.Qwen3VLProcessor
    else:
        vision = dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, patch_size=14, spatial_merge_size=2,
                      temporal_patch_size=2)
        if kind == "qwen2_5_vl":
            vision.update(intermediate_size=64, out_hidden_size=32, window_size=56, fullatt_block_indexes=[0])
        cls = tf.Qwen2_5_VLConfig if kind == "qwen2_5_vl" else tf.Qwen2VLConfig
        config = cls(text_config=_text_config(tok, rope_parameters=rope, **text), vision_config=vision, **ids)
        model_cls = tf.Qwen2_5_VLForConditionalGeneration if kind == "qwen2_5_vl" else tf.Qwen2VLForConditionalGeneration
        model = model_cls(config)
        image_proc = tf.Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2, **pixels)
        video_proc = Qwen2VLVideoProcessor(patch_size=14, merge_size=2, temporal_patch_size=2, **pixels)
        processor_cls = tf.Qwen2_5_VLProcessor if kind == "qwen2_5_vl" else tf.Qwen2VLProcessor
    template = chatml_parts("<|vision_start|><|image_pad|><|vision_end|>", "<|vision_start|><|video_pad|><|vision_end|>")
    processor = processor_cls(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                              chat_template=template)
    return _save(model, processor, out)


def llava(smol_dir: Path, out: Path) -> Path:
    import transformers as tf

    tok = _tokenizer(smol_dir, ["<image>"])
    vision = tf.SiglipVisionConfig(image_size=28, patch_size=14, **VISION)
    config = tf.LlavaConfig(vision_config=vision, text_config=tf.LlamaConfig(**_text_config(tok)),
                            image_token_index=tok.convert_tokens_to_ids("<image>"), projector_hidden_act="gelu",
                            vision_feature_select_strategy="full", vision_feature_layer=-1)
    model = tf.LlavaForConditionalGeneration(config)
    image_proc = tf.SiglipImageProcessor(size={"height": 28, "width": 28})
    processor = tf.LlavaProcessor(image_processor=image_proc, tokenizer=tok, patch_size=14,
                                  vision_feature_select_strategy="full", chat_template=chatml_parts())
    return _save(model, processor, out)


def llava_next(smol_dir: Path, out: Path) -> Path:
    import transformers as tf

    tok = _tokenizer(smol_dir, ["<image>"])
    vision = tf.CLIPVisionConfig(image_size=28, patch_size=14, projection_dim=32, **VISION)
    pinpoints = [[28, 28], [28, 56], [56, 28], [56, 56]]
    config = tf.LlavaNextConfig(vision_config=vision, text_config=tf.LlamaConfig(**_text_config(tok)),
                                image_token_index=tok.convert_tokens_to_ids("<image>"), image_grid_pinpoints=pinpoints,
                                vision_feature_select_strategy="default", vision_feature_layer=-1)
    model = tf.LlavaNextForConditionalGeneration(config)
    image_proc = tf.LlavaNextImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28},
                                            image_grid_pinpoints=pinpoints)
    processor = tf.LlavaNextProcessor(image_processor=image_proc, tokenizer=tok, patch_size=14,
                                      vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                      chat_template=chatml_parts())
    return _save(model, processor, out)


def idefics3(smol_dir: Path, out: Path, kind: str = "idefics3") -> Path:
    import transformers as tf

    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tok = _tokenizer(smol_dir, ["<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>", *grid])
    vision = dict(image_size=28, patch_size=14, **VISION)
    cfg_cls, model_cls = ((tf.SmolVLMConfig, tf.SmolVLMForConditionalGeneration) if kind == "smolvlm"
                          else (tf.Idefics3Config, tf.Idefics3ForConditionalGeneration))
    config = cfg_cls(vision_config=vision, text_config=_text_config(tok), scale_factor=2,
                     image_token_id=tok.convert_tokens_to_ids("<image>"))
    model = model_cls(config)
    image_kwargs = dict(size={"longest_edge": 56}, max_image_size={"longest_edge": 28}, do_image_splitting=True)
    if kind == "smolvlm":
        image_proc = tf.SmolVLMImageProcessor(**image_kwargs)
        video_proc = tf.SmolVLMVideoProcessor(size={"longest_edge": 28}, max_image_size={"longest_edge": 28})
        processor = tf.SmolVLMProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                                        image_seq_len=1, chat_template=chatml_parts())
    else:
        image_proc = tf.Idefics3ImageProcessor(**image_kwargs)
        processor = tf.Idefics3Processor(image_processor=image_proc, tokenizer=tok, image_seq_len=1,
                                         chat_template=chatml_parts())
    return _save(model, processor, out)


def gemma3(smol_dir: Path, out: Path) -> Path:
    import transformers as tf

    named = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    tok = _tokenizer(smol_dir, named=named)
    text = tf.Gemma3TextConfig(**_text_config(tok, head_dim=8, sliding_window=64))
    vision = tf.SiglipVisionConfig(image_size=28, patch_size=14, **VISION)
    config = tf.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                             image_token_index=tok.image_token_id, boi_token_index=tok.boi_token_id,
                             eoi_token_index=tok.eoi_token_id)
    model = tf.Gemma3ForConditionalGeneration(config)
    image_proc = tf.Gemma3ImageProcessor(size={"height": 28, "width": 28})
    processor = tf.Gemma3Processor(image_processor=image_proc, tokenizer=tok, image_seq_length=4,
                                   chat_template=chatml_parts("<start_of_image>"))
    return _save(model, processor, out)


def internvl(smol_dir: Path, out: Path) -> Path:
    import transformers as tf

    named = {"start_image_token": "<img>", "end_image_token": "</img>", "context_image_token": "<IMG_CONTEXT>",
             "video_token": "<video>"}
    tok = _tokenizer(smol_dir, named=named)
    vision = tf.InternVLVisionConfig(image_size=[28, 28], patch_size=[14, 14], hidden_size=32, intermediate_size=64,
                                     num_hidden_layers=1, num_attention_heads=2)
    config = tf.InternVLConfig(vision_config=vision, text_config=tf.Qwen2Config(**_text_config(tok)),
                               image_token_id=tok.context_image_token_id, downsample_ratio=0.5)
    model = tf.InternVLForConditionalGeneration(config)
    image_proc = tf.GotOcr2ImageProcessor(size={"height": 28, "width": 28}, crop_to_patches=False)
    video_proc = tf.InternVLVideoProcessor(size={"height": 28, "width": 28})
    processor = tf.InternVLProcessor(image_processor=image_proc, tokenizer=tok, video_processor=video_proc,
                                     image_seq_length=1, chat_template=chatml_parts("<IMG_CONTEXT>", "<video>"))
    return _save(model, processor, out)


def _audible(model):
    """Re-initialise the audio encoder's input convolutions at PyTorch's fan-in scale: at the config's std 0.02 the
    sound barely moves their output next to the position embeddings, and training takes far longer to hear it."""
    for conv in (model.model.audio_tower.conv1, model.model.audio_tower.conv2):
        conv.reset_parameters()
    return model


def qwen2_audio(smol_dir: Path, out: Path, hidden: int = 32, seconds: int = 4) -> Path:
    import transformers as tf

    tok = _tokenizer(smol_dir, ["<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"])
    # a short feature window (Whisper's is 30 s) keeps the encoder cheap: 4 s = 400 frames -> 200 positions
    audio = dict(num_mel_bins=80, d_model=hidden, encoder_layers=1, encoder_attention_heads=2,
                 encoder_ffn_dim=2 * hidden, max_source_positions=50 * seconds)
    text = _text_config(tok)
    text.update(hidden_size=hidden, intermediate_size=2 * hidden)
    config = tf.Qwen2AudioConfig(audio_config=audio, text_config=text,
                                 audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>"))
    model = _audible(tf.Qwen2AudioForConditionalGeneration(config))
    extractor = tf.WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, chunk_length=seconds)
    processor = tf.Qwen2AudioProcessor(feature_extractor=extractor, tokenizer=tok,
                                       chat_template=chatml_parts(audio="<|audio_bos|><|AUDIO|><|audio_eos|>"))
    return _save(model, processor, out)


def qwen2_5_omni(smol_dir: Path, out: Path) -> Path:
    """The Qwen2.5-Omni thinker (audio + vision + text in, text out)."""
    import transformers as tf
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    named = {"image_token": "<|IMAGE|>", "audio_token": "<|AUDIO|>", "video_token": "<|VIDEO|>",
             "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
             "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>"}
    tok = _tokenizer(smol_dir, named=named)
    rope = {"rope_type": "default", "mrope_section": [2, 1, 1], "rope_theta": 10000.0}
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32, patch_size=14,
                  window_size=56, fullatt_block_indexes=[0])
    audio = dict(num_mel_bins=80, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=64, d_model=32,
                 output_dim=32, n_window=50)
    config = tf.Qwen2_5OmniThinkerConfig(
        audio_config=audio, vision_config=vision, text_config=_text_config(tok, rope_parameters=rope),
        audio_token_index=tok.audio_token_id, image_token_index=tok.image_token_id,
        video_token_index=tok.video_token_id, audio_start_token_id=tok.audio_bos_token_id,
        audio_end_token_id=tok.audio_eos_token_id, vision_start_token_id=tok.vision_bos_token_id,
        vision_end_token_id=tok.vision_eos_token_id, user_token_id=tok.convert_tokens_to_ids("user"))
    model = tf.Qwen2_5OmniThinkerForConditionalGeneration(config)
    pixels = dict(min_pixels=28 * 28, max_pixels=112 * 112)
    processor = tf.Qwen2_5OmniProcessor(
        image_processor=tf.Qwen2VLImageProcessor(patch_size=14, merge_size=2, temporal_patch_size=2, **pixels),
        video_processor=Qwen2VLVideoProcessor(patch_size=14, merge_size=2, temporal_patch_size=2, **pixels),
        feature_extractor=tf.WhisperFeatureExtractor(feature_size=80, sampling_rate=16000), tokenizer=tok,
        chat_template=chatml_parts("<|vision_bos|><|IMAGE|><|vision_eos|>", "<|vision_bos|><|VIDEO|><|vision_eos|>",
                                   "<|audio_bos|><|AUDIO|><|audio_eos|>"))
    return _save(model, processor, out)


def llava_smollm2(smol_dir: Path, out: Path, image_size: int = 8, patch_size: int = 4,
                  llm_layers: int | None = None) -> Path:
    """A LLaVA-style model: a small random SigLIP vision tower and projector on the real SmolLM2-135M-Instruct.

    `llm_layers` keeps only SmolLM2's first N transformer blocks (its embeddings, tokenizer, chat template, final
    norm and head stay whole) to make CPU training affordable. The processor has no chat template of its own, so
    encoding uses SmolLM2's ChatML template with `<image>` placeholders."""
    import torch
    import transformers as tf

    tok = _tokenizer(smol_dir, ["<image>"])
    llm = _smollm2_blocks(smol_dir, llm_layers)
    vision = tf.SiglipVisionConfig(image_size=image_size, patch_size=patch_size, hidden_size=64, intermediate_size=128,
                                   num_hidden_layers=1, num_attention_heads=2)
    config = tf.LlavaConfig(vision_config=vision, text_config=llm.config,
                            image_token_index=tok.convert_tokens_to_ids("<image>"), projector_hidden_act="gelu",
                            vision_feature_select_strategy="full", vision_feature_layer=-1, tie_word_embeddings=True)
    torch.manual_seed(0)
    model = tf.LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(llm.model.state_dict())
    model.lm_head.weight = model.model.language_model.embed_tokens.weight
    model.resize_token_embeddings(len(tok))
    model.generation_config = llm.generation_config
    image_proc = tf.SiglipImageProcessor(size={"height": image_size, "width": image_size}, resample=0)
    processor = tf.LlavaProcessor(image_processor=image_proc, tokenizer=tok, patch_size=patch_size,
                                  vision_feature_select_strategy="full")
    return _save(model, processor, out)


def _smollm2_blocks(smol_dir: Path, llm_layers: int | None):
    """SmolLM2-135M-Instruct, keeping only its first `llm_layers` transformer blocks when given."""
    import torch
    import transformers as tf

    llm = tf.AutoModelForCausalLM.from_pretrained(smol_dir, dtype=torch.float32)
    if llm_layers:
        llm.model.layers = llm.model.layers[:llm_layers]
        llm.config.num_hidden_layers = llm_layers
        if getattr(llm.config, "layer_types", None):
            llm.config.layer_types = llm.config.layer_types[:llm_layers]
    return llm


BUILDERS: dict[str, Callable[[Path, Path], Path]] = {
    "qwen2_vl": qwen2_vl,
    "qwen2_5_vl": lambda s, o: qwen2_vl(s, o, "qwen2_5_vl"),
    "qwen3_vl": lambda s, o: qwen2_vl(s, o, "qwen3_vl"),
    "llava": llava,
    "llava_next": llava_next,
    "idefics3": idefics3,
    "smolvlm": lambda s, o: idefics3(s, o, "smolvlm"),
    "gemma3_vl": gemma3,
    "internvl": internvl,
    "qwen2_audio": qwen2_audio,
    "qwen2_5_omni": qwen2_5_omni,
}


# ---- media --------------------------------------------------------------------------------------
def redraw_qwen2_vl(folder: Path, std: float, seed: int = 0) -> Path:
    """Redraw a tiny Qwen2-VL's matrices at `std` and save it again: at the builders' 0.02 every input gives nearly
    the same hidden states, so answers and vectors barely depend on the image."""
    import torch
    from transformers import Qwen2VLForConditionalGeneration

    model = Qwen2VLForConditionalGeneration.from_pretrained(folder)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    model.save_pretrained(folder)
    return folder


def write_image(path: Path, size: tuple[int, int] = (56, 56), seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def write_wav(path: Path, seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> Path:
    import wave

    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def write_gif(path: Path, frames: int = 4, size: int = 56, direction: int = 1, fps: float = 4.0) -> Path:
    """A clip of a white square moving left (-1) or right (+1) on black."""
    from PIL import Image

    images = []
    for i in range(frames):
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        x = size // 4 + direction * i * (size // (2 * frames))
        canvas[size // 3: size // 3 + size // 4, x: x + size // 4] = 255
        images.append(Image.fromarray(canvas))
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
