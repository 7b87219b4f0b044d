"""The built-in methods; importing this package registers them."""

from nxm_deploy.admm.methods import admm, asp, dense, oneshot, srste

__all__ = ["admm", "asp", "dense", "oneshot", "srste"]
