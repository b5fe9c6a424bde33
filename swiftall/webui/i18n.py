"""The page's labels in English and Chinese. Flags keep their `--name` in both languages."""
from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    "title": ("swiftall", "swiftall"),
    "tab_chat": ("Chat", "对话"),
    "tab_train": ("Train", "训练"),
    "tab_runs": ("Runs", "运行"),
    "tab_eval": ("Evaluate", "评测"),
    "tab_export": ("Export", "导出"),
    "tab_deploy": ("Deploy", "部署"),
    "message": ("Message", "消息"),
    "message_hint": ("Type a message; attach images, audio or video for multimodal models",
                     "输入消息；多模态模型可附加图片、音频或视频"),
    "send": ("Send", "发送"),
    "clear": ("Clear", "清空"),
    "system": ("System prompt (--system)", "系统提示 (--system)"),
    "sampling": ("Sampling", "采样"),
    "compare": ("Compare models side by side", "多模型并排对比"),
    "compare_hint": ("Optional: more models answer the same message (one per line: MODEL or MODEL ADAPTER_DIR)",
                     "可选：更多模型回答同一条消息（每行一个：模型 或 模型 适配器目录）"),
    "camera": ("Camera", "摄像头"),
    "snapshot": ("Webcam snapshot (attached to the message)", "摄像头拍照（附加到消息）"),
    "load_model": ("Load model", "加载模型"),
    "model_status": ("Model", "模型"),
    "assistant": ("Assistant", "助手"),
    "command": ("Command", "命令"),
    "upload_dataset": ("Upload dataset files", "上传数据集文件"),
    "more_flags": ("More flags (as on the command line, e.g. --warmup_ratio 0.1)",
                   "更多参数（与命令行相同，例如 --warmup_ratio 0.1）"),
    "start": ("Start", "开始"),
    "preview": ("Preview encoded rows", "预览编码后的样本"),
    "as_command": ("Copy as command line", "复制为命令行"),
    "as_yaml": ("Copy as YAML", "复制为 YAML"),
    "load_yaml": ("Load a YAML config", "加载 YAML 配置"),
    "output": ("Output", "输出"),
    "runs_table": ("Runs in", "运行列表："),
    "refresh": ("Refresh", "刷新"),
    "run_id": ("Run", "运行"),
    "stop": ("Stop", "停止"),
    "resume": ("Resume from last checkpoint", "从最新检查点恢复"),
    "log": ("Log", "日志"),
    "plot": ("Loss / learning rate", "损失 / 学习率"),
    "deploy_start": ("Start server", "启动服务"),
    "deploy_stop": ("Stop server", "停止服务"),
    "not_available": ("This swiftall has no '{command}' command yet.", "此版本的 swiftall 还没有 '{command}' 命令。"),
}


def translator(lang: str):
    """t(key, **fmt) in the chosen language (English when a key has no translation)."""
    index = 1 if lang == "zh" else 0

    def t(key: str, **fmt: str) -> str:
        text = LABELS[key][index] if key in LABELS else key
        return text.format(**fmt) if fmt else text

    return t
