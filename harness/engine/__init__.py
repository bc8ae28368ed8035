"""Everything mmseg sees. One job per module:
  eva2         the EVA2 backbone (BACKBONES 'EVA2') and its checkpoint key mapping
  checkpoint   safe_load (weights_only + allow-list), strict seg loading, the pretrained load report
  layer_decay  mmcv OPTIMIZER_BUILDERS 'EVA2LayerDecayOptimizerConstructor'
  setr_resize  PIPELINES 'SETRResize'
  amp_hook     HOOKS 'AmpOptimizerHook' (torch AMP on CUDA, fp32 elsewhere)
  modules      the single custom_imports module that registers the above
  shims        compatibility shims for mmcv 1.7 / mmseg 0.29 on torch 2.x (applied by the entry point only)
  entry        the entry point torchrun starts
Importing this package imports nothing heavy.
"""

import logging
import warnings

# mmcv 1.7's import-time notice about mmcv 2.0 (Jan 2023) says nothing about this run; keep logs readable
warnings.filterwarnings("ignore", message="On January 1, 2023, MMCV will release v2.0.0")
# nor does torch's "No CUDA runtime is found, using CUDA_HOME=..." when mmcv imports cpp_extension on a CPU machine
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
