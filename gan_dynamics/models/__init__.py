"""Generator and discriminator networks, one module per family (synthetic, image models).

Import the module you need (`from gan_dynamics.models import synthetic`); this package
imports none of them, so that loading one family never pulls in another's dependencies.
"""
