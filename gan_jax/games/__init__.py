"""The games the one train_step runs (PaperGame is the paper's and the conditional one; the
others are the paper's §7 variants: inpainting, item 3; bigan, item 2; semi_supervised, item 4). A game is chosen by name: `train.game`.

The helpers every game calls its players with are in players.py; the step (gan_jax/step.py)
imports the games, never the reverse."""
from gan_jax.errors import UserError
from gan_jax.games.bigan import BiGAN
from gan_jax.games.inpainting import Inpainting
from gan_jax.games.paper import PaperGame
from gan_jax.games.semi_supervised import SemiSupervised

GAMES = {'gan': PaperGame, 'inpainting': Inpainting, 'bigan': BiGAN, 'semi_supervised': SemiSupervised}


def make_game(name: str):
  if name not in GAMES:
    raise UserError(f'train.game={name!r} is unknown; choose one of {sorted(GAMES)}.')
  return GAMES[name]()
