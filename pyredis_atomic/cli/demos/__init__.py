"""One module per use shown by ``pyredis-atomic demo`` (cache, lock, queue, counter); each
exports ``run(client, say)``, where ``say`` prints one line."""
