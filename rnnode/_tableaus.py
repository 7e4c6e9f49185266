"""The explicit Runge-Kutta methods rnnode steps, as data: one Butcher tableau per method.

A tableau (c, a, b) with s stages advances y' = f(t, y) from t0 by h:

    k_1 = f(t0, y0),   k_i = f(t0 + c_i h, y0 + h sum_{j<i} a_ij k_j)   (i = 2..s),
    y1 = y0 + h sum_i b_i k_i;

an embedded pair adds error weights e (b minus the embedded solution's weights), the local
error estimate being h sum_i e_i k_i. The numbers are those of torchdiffeq 0.2.4-0.2.5
(``torchdiffeq/_impl/{fixed_grid,rk_common,dopri5,dopri8,bosh3,fehlberg2,adaptive_heun}.py``),
written as the same Python expressions so that they are the same doubles; its public
``torchdiffeq.odeint`` is the oracle they are tested against (tests/test_solve_contract.py,
``engine="torchdiffeq"``). Sources of the methods:

- euler, midpoint: Hairer, Norsett & Wanner, Solving ODEs I (2nd ed.), Sec. II.1.
- heun3: Heun's third-order method, ibid. Table II.1.1 (c = 0, 1/3, 2/3; b = 1/4, 0, 3/4).
- rk4: Kutta's 3/8 rule, ibid. Table II.1.2 (right).
- dopri5: Dormand & Prince, J. Comput. Appl. Math. 6 (1980) 19-26; Shampine's error weights.
- dopri8: Prince & Dormand, J. Comput. Appl. Math. 7 (1981) 67-75 (the 8(7) pair, 13 stages
  plus the first-same-as-last stage, torchdiffeq's rational approximations).
- bosh3: Bogacki & Shampine, Appl. Math. Lett. 2 (1989) 321-325.
- fehlberg2: Fehlberg's 2(1) pair (NASA TR R-315, 1969), as torchdiffeq's ``Fehlberg2``.
- adaptive_heun: Heun's method with the Euler step as its embedded estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TABLEAUS", "Tableau"]


@dataclass(frozen=True)
class Tableau:
    """One explicit Runge-Kutta method.

    Attributes:
        order: the order of the solution y1 (for a pair: the propagated one, which sets the
            step-size rule's exponent 1 / order).
        c: stage times c_2..c_s (c_1 = 0 is implied).
        a: row i - 2 holds a_i1..a_i,i-1, the weights of stages 1..i-1 in stage i.
        b: the solution weights b_1..b_s.
        e: the error weights (embedded pairs), or None (fixed-step methods).
    """

    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    e: tuple[float, ...] | None = None

    @property
    def fsal(self) -> bool:
        """First same as last: the last stage's input is y1 itself (its evaluation is the next
        step's k_1, and y1 needs no sum of its own)."""
        return self.e is not None and bool(self.a) and self.b == (*self.a[-1], 0.0)


_DOPRI8_A = (
    (1 / 18,),
    (1 / 48, 1 / 16),
    (1 / 32, 0, 3 / 32),
    (5 / 16, 0, -75 / 64, 75 / 64),
    (3 / 80, 0, 0, 3 / 16, 3 / 20),
    (29443841 / 614563906, 0, 0, 77736538 / 692538347, -28693883 / 1125000000,
     23124283 / 1800000000),
    (16016141 / 946692911, 0, 0, 61564180 / 158732637, 22789713 / 633445777,
     545815736 / 2771057229, -180193667 / 1043307555),
    (39632708 / 573591083, 0, 0, -433636366 / 683701615, -421739975 / 2616292301,
     100302831 / 723423059, 790204164 / 839813087, 800635310 / 3783071287),
    (246121993 / 1340847787, 0, 0, -37695042795 / 15268766246, -309121744 / 1061227803,
     -12992083 / 490766935, 6005943493 / 2108947869, 393006217 / 1396673457,
     123872331 / 1001029789),
    (-1028468189 / 846180014, 0, 0, 8478235783 / 508512852, 1311729495 / 1432422823,
     -10304129995 / 1701304382, -48777925059 / 3047939560, 15336726248 / 1032824649,
     -45442868181 / 3398467696, 3065993473 / 597172653),
    (185892177 / 718116043, 0, 0, -3185094517 / 667107341, -477755414 / 1098053517,
     -703635378 / 230739211, 5731566787 / 1027545527, 5232866602 / 850066563,
     -4093664535 / 808688257, 3962137247 / 1805957418, 65686358 / 487910083),
    (403863854 / 491063109, 0, 0, -5068492393 / 434740067, -411421997 / 543043805,
     652783627 / 914296604, 11173962825 / 925320556, -13158990841 / 6184727034,
     3936647629 / 1978049680, -160528059 / 685178525, 248638103 / 1413531060, 0),
    (14005451 / 335480064, 0, 0, 0, 0, -59238493 / 1068277825, 181606767 / 758867731,
     561292985 / 797845732, -1041891430 / 1371343529, 760417239 / 1151165299,
     118820643 / 751138087, -528747749 / 2220607170, 1 / 4),
)  # fmt: skip

_DOPRI8_E = (
    14005451 / 335480064 - 13451932 / 455176623, 0, 0, 0, 0,
    -59238493 / 1068277825 - -808719846 / 976000145,
    181606767 / 758867731 - 1757004468 / 5645159321,
    561292985 / 797845732 - 656045339 / 265891186,
    -1041891430 / 1371343529 - -3867574721 / 1518517206,
    760417239 / 1151165299 - 465885868 / 322736535,
    118820643 / 751138087 - 53011238 / 667516719,
    -528747749 / 2220607170 - 2 / 45,
    1 / 4, 0,
)  # fmt: skip

#: Every method's tableau, by its torchdiffeq name.
TABLEAUS: dict[str, Tableau] = {
    "euler": Tableau(1, (), (), (1.0,)),
    "midpoint": Tableau(2, (0.5,), ((0.5,),), (0.0, 1.0)),
    "heun3": Tableau(3, (1 / 3, 2 / 3), ((1 / 3,), (0.0, 2 / 3)), (0.25, 0.0, 0.75)),
    "rk4": Tableau(
        4,
        (1 / 3, 2 / 3, 1.0),
        ((1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)),
        (0.125, 0.375, 0.375, 0.125),
    ),
    "dopri5": Tableau(
        5,
        (1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
        (
            (1 / 5,),
            (3 / 40, 9 / 40),
            (44 / 45, -56 / 15, 32 / 9),
            (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
            (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
            (35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
        ),
        (35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0),
        (
            35 / 384 - 1951 / 21600,
            0,
            500 / 1113 - 22642 / 50085,
            125 / 192 - 451 / 720,
            -2187 / 6784 - -12231 / 42400,
            11 / 84 - 649 / 6300,
            -1.0 / 60.0,
        ),
    ),
    "dopri8": Tableau(
        8,
        (
            1 / 18,
            1 / 12,
            1 / 8,
            5 / 16,
            3 / 8,
            59 / 400,
            93 / 200,
            5490023248 / 9719169821,
            13 / 20,
            1201146811 / 1299019798,
            1,
            1,
            1,
        ),
        _DOPRI8_A,
        (*_DOPRI8_A[-1], 0),
        _DOPRI8_E,
    ),  # fmt: skip
    "bosh3": Tableau(
        3,
        (1 / 2, 3 / 4, 1.0),
        ((1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
        (2 / 9, 1 / 3, 4 / 9, 0.0),
        (2 / 9 - 7 / 24, 1 / 3 - 1 / 4, 4 / 9 - 1 / 3, -1 / 8),
    ),
    "fehlberg2": Tableau(
        2,
        (1 / 2, 1.0),
        ((1 / 2,), (1 / 256, 255 / 256)),
        (1 / 512, 255 / 256, 1 / 512),
        (-1 / 512, 0, 1 / 512),
    ),
    "adaptive_heun": Tableau(2, (1.0,), ((1.0,),), (0.5, 0.5), (0.5, -0.5)),
}
