"""Built-in games: one module per game, found by `muzero.plugins.load_game(NAME)`."""
