"""The one module configs name in `custom_imports`: importing it registers our pieces with mmseg / mmcv.

    custom_imports = dict(imports=['harness.engine.modules'], allow_failed_imports=False)

Registers (and does nothing else: no patches, no global state):
- BACKBONES 'EVA2' (eva2.py)
- mmcv OPTIMIZER_BUILDERS 'EVA2LayerDecayOptimizerConstructor' (layer_decay.py)
- PIPELINES 'SETRResize' (setr_resize.py)
- HOOKS 'AmpOptimizerHook' (amp_hook.py)
"""
from harness.engine import amp_hook, eva2, layer_decay, setr_resize  # noqa: F401  (imported to register)
