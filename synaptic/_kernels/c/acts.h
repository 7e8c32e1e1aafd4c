/* The activation codes of the compiled kernels: the only C definition of them.
 *
 * The Python side has one table of activations (synaptic/_kernels/acts.py: name, code,
 * NumPy forward and derivative, pairings, aliases); its codes are these numbers
 * (tests/test_activations.py reads this file and compares).  Declared for Cython in
 * _common.pxd, which holds the C cases of each activation (act_row, deriv_row,
 * mul_deriv_row) and _step.pxd (_delta_row).  Adding an activation: a row of the table,
 * a code here, its cases there.
 */
#ifndef SYNAPTIC_ACTS_H
#define SYNAPTIC_ACTS_H

enum {
    ACT_LINEAR = 0,
    ACT_SIGMOID = 1,
    ACT_TANH = 2,
    ACT_SOFTMAX = 3,
    ACT_RELU = 4,
    ACT_BINARY_THRESHOLD = 5,
    ACT_BIPOLAR_THRESHOLD = 6,
    ACT_BINARY_PROB = 7,
    ACT_LEAKY_RELU = 8,   /* z > 0 ? z : slope * z; slope in [0, 1), passed next to the code */
    ACT_ELU = 9,          /* z > 0 ? z : e^z - 1 (alpha 1) */
    ACT_SOFTPLUS = 10,    /* log(1 + e^z) */
    N_ACT = 11
};

/* The default slope of leaky-relu (torch.nn.LeakyReLU's): the kernels' default argument. */
#define SYN_LEAKY_SLOPE 0.01

#endif
