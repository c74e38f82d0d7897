"""The games the one train_step runs (step.PaperGame is the paper's and the conditional one; the
others are the paper's §7 variants: inpainting, item 3; bigan, item 2; semi_supervised, item 4). A game is chosen by name: `train.game`."""
from gan_jax import step
from gan_jax.errors import UserError
from gan_jax.games.bigan import BiGAN
from gan_jax.games.inpainting import Inpainting
from gan_jax.games.semi_supervised import SemiSupervised

GAMES = {'gan': step.PaperGame, 'inpainting': Inpainting, 'bigan': BiGAN, 'semi_supervised': SemiSupervised}


def make_game(name: str):
  if name not in GAMES:
    raise UserError(f'train.game={name!r} is unknown; choose one of {sorted(GAMES)}.')
  return GAMES[name]()
