// Used only to compile the kernel against Xilinx's open-source ap_int.h / hls_stream.h (as shipped
// inside the hls4ml PyPI package, installed under build/ by `make bench-hls`), which lack the
// AXI4-Stream side-channel struct. Written here from the documented field names; Vitis provides
// the real one. Not on the include path of any other build.
#ifndef PQ_TEST_AP_AXI_SDATA_H
#define PQ_TEST_AP_AXI_SDATA_H
#include <ap_int.h>
template <int D, int U, int TI, int TD>
struct ap_axiu {
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<(D + 7) / 8> strb;
    ap_uint<1> last;
};
#endif
