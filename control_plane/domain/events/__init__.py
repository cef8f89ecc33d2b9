"""The live event stream: incident events fanned out through Redis to SSE clients."""
