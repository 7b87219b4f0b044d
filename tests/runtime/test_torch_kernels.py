"""Which of PyTorch's 2:4 kernels `bench --backend torch` may use on which GPU: a pure rule, checked
here for every compute capability that matters (the GPUs themselves are not needed)."""

from __future__ import annotations

import pytest

from nxm_deploy.errors import EXIT_NEEDS_GPU, BackendUnavailableError
from nxm_deploy.runtime.torch_session import semi_structured_kernels


@pytest.mark.parametrize(
    ("capability", "cusparselt", "kernels"),
    [
        ((7, 5), True, None),  # Turing: no sparse tensor cores, the model stays dense
        ((8, 0), False, "CUTLASS"),  # A100 without cuSPARSELt: PyTorch's CUTLASS kernels (sm_8x)
        ((8, 6), True, "cuSPARSELt"),
        ((8, 9), False, "CUTLASS"),
        ((9, 0), True, "cuSPARSELt"),  # H100/H200 with cuSPARSELt
        ((10, 0), True, "cuSPARSELt"),
    ],
)
def test_kernels_by_capability(capability, cusparselt, kernels):
    assert semi_structured_kernels(capability, cusparselt) == kernels


@pytest.mark.parametrize("capability", [(9, 0), (10, 0), (12, 0)])
def test_hopper_and_newer_without_cusparselt_are_refused_in_one_line(capability):
    """PyTorch's CUTLASS semi-structured kernels are built for sm_8x only: refuse (exit 3) before any
    forward rather than fail inside one."""
    with pytest.raises(BackendUnavailableError) as info:
        semi_structured_kernels(capability, cusparselt=False)
    message = str(info.value)
    assert info.value.exit_code == EXIT_NEEDS_GPU == 3 and "\n" not in message
    assert message.startswith(
        f"GPU sm_{capability[0]}{capability[1]}: PyTorch's CUTLASS 2:4 kernels run on sm_8x"
    )
