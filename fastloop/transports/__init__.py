"""asyncio transports on the userspace stack (ARCHITECTURE: between net/ and the loop)."""
