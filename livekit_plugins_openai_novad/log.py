import logging

logger = logging.getLogger("livekit.plugins.openai_novad")
