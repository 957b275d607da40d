"""Phoneme replacements that let espeak-ng read English through MBROLA databases short of English phonemes.

espeak-ng turns English text into its English phonemes and hands them to an MBROLA database through the database's
own phoneme translation table. A database of another language lacks some English phonemes (the dental fricatives
``T``/``D``, schwa ``@``, the lax vowels, diphthongs, ...), and mbrola fills every diphone it lacks with silence:
hundreds of gaps in 25 sentences, speech no model can learn from. A voice file's ``replace 0 <phoneme> <other>``
lines swap each such phoneme for the nearest one the database has before synthesis (``NULL``: drop it, for an
``h`` in an h-less language), which is how a speaker of that language reads English anyway: "think" as "tink".

How these were made (once, by hand-checked script): each English phoneme a database lacks, named by the mbrola
warnings, gets the first of a nearness-ordered list of candidates that the database has, never one that would move
the stress (unstressed-only vowels) or that collides with another sound's name in the database; at most 60 lines
(espeak-ng's limit). Measured on 25 dev sentences with the round-11 model (greedy, never heard these voices):
warnings 270-470 -> 29-57, greedy CER 0.67-0.80 -> 0.40-0.55, in the range of the 23 ``mbrola-foreign`` databases
the same model has trained on (br1 0.55, es1 0.42, fr2 0.39). Rejected: ar1/2, cz1, es3, in1/2, ma1, nl1, nz1
(still hundreds of gaps or worse CER), ee1, ic1, la1 (too many gaps left), es4 (borderline), and cz2 and tl1,
whose maps had to swap consonants (n -> m; f -> v, z -> s).
"""

from __future__ import annotations

# "<espeak-ng phoneme> <replacement>; ..." (espeak-ng's English phoneme mnemonics). Databases that share a phoneme
# translation table share a map.
_HEBREW_1 = ("I e; @ e; D d; 0 o; E e; I2 i; i: e; V a; u: u; aI a; eI e; a# a; 3 e; N n; oU o; 3: e; r- r; tS S; "
             "A@ a; T t; O@ o; U u; O: o; aU a; 0# o; O2 o; e@ e; aa a; o@ o; i@3 i; aI@ a; i@ i; OI o; @- e; U@ "
             "u; A: a; Z z; @2 e; @5 o; aU@ a; aI3 a; IR i; VR a; t2 t; t# t; d# d; n- n; m- m; O o; a2 a; a#2 a; "
             "I# i; I2# i; E# e; E2 e; e# e; @# e; oU# o; e: e; o: o")
_HEBREW_2 = ("I e; @ e; D d; 0 o; r R; E e; I2 i; i: e; V a; u: u; aI a; eI e; a# a; 3 e; oU o; 3: e; r- R; A@ a; "
             "T t; O@ o; U u; O: o; aU a; 0# o; O2 o; e@ e; aa a; o@ o; i@3 i; aI@ a; i@ i; OI o; @- e; U@ u; A: "
             "a; @2 e; @5 o; aU@ a; aI3 a; IR i; VR a; t2 t; t# t; d# d; n- n; m- m; O o; a2 a; a#2 a; I# i; I2# "
             "i; E# e; E2 e; e# e; @# e; oU# o; e: e; o: o")
_ITALIAN_1 = ("@ E; l l^; D d; 0 o; i: I; V a; u: U; eI e; h NULL; a# a; 3 E; j I; oU o; S s; 3: E; dZ J; @L l^; r- "
              "r; tS c; A@ a; T t; O@ O; O: o; 0# o; O2 o; e@ E; aa a; o@ O; i@3 I; aI@ aI; i@ I; OI O; U@ U; A: a; "
              "Z z; @2 I2; @5 U; aU@ aU; aI3 aI; IR I; VR a; t2 t; t# t; d# d; l/ l^; n- n; m- m; l- l^; u U; a2 a; "
              "a#2 a; I# I; I2# I2; E# E; e# e; @# E; oU# o; e: e; o: o")
_ITALIAN_3 = ("@ E; l l^; D d; 0 o; r r/; I2 I; i: I; V a; u: u; eI e; h NULL; a# a; 3 E; oU o; 3: E; @L l^; r- r/; "
              "A@ a; T t; O@ O; O: o; 0# o; O2 o; e@ E; aa a; o@ O; i@3 I; aI@ aI; i@ I; OI O; U@ U; A: a; @2 I; @5 "
              "U; aU@ aU; aI3 aI; IR I; VR a; t2 t; t# t; d# d; l/ l^; n- n; m- m; l- l^; a2 a; a#2 a; I# I; I2# I; "
              "E# E; E2 E; e# e; @# E; oU# o; e: e; o: o")
_GERMAN_8 = ("D d; 0 O; w u; I2 I; i: I; eI e:; a# @; i I; oU o:; dZ d; r- r; tS S; A@ A:; T t; O@ O:; U u; 0# O; "
             "O2 O; e@ E; aa a; o@ O:; i@3 I; aI@ aI; i@ I; U@ u:; Z z; @2 @; @5 @; aU@ aU; aI3 aI; IR I; VR V; t2 "
             "t; t# t; d# d; n- n; m- m; o O; a2 a; a#2 V; I# I; I2# I; E# E; E2 E; e# e; @# @; oU# o:")
_LITHUANIAN = ("@ e; l L; D d; 0 o; E e; I2 I; V a; aI a; eI e:; a# a; 3 e; oU o:; 3: e; @L L; r- r; A@ aa; T t; O@ "
               "O; O: o; aU a; 0# o; O2 o; e@ e; o@ O; i@3 i:; aI@ a; i@ i:; OI O; U@ u:; A: aa; @2 I; @5 U; aU@ a; "
               "aI3 a; IR I; VR a; t2 t; t# t; d# d; l/ L; n- n; m- m; l- L; a2 a; a#2 a; I# I; I2# I; E# e; E2 e; "
               "e# e; @# e; oU# o:")
_TURKISH = ("I E; l L; D d; 0 O; r *; I2 i; i: i; V a; u: U; aI a; eI E; a# @; 3 @; N n; oU O; 3: E; @L L; r- *; "
            "A@ a; T t; O@ O; O: O; aU a; 0# O; O2 O; e@ E; aa a; o@ O; i@3 i; aI@ a; i@ i; OI O; @- @; U@ U; A: "
            "a; @2 @; @5 @; aU@ a; aI3 a; IR i; VR a; t2 t; t# t; d# d; l/ L; n- n; m- m; l- L; o O; e E; u U; a2 "
            "a; a#2 a; I# i; I2# i; E# E; E2 E; e# E; @# @; oU# O")

MAPS = {"de8": _GERMAN_8, "hb1": _HEBREW_1, "hb2": _HEBREW_2, "it1": _ITALIAN_1, "it2": _ITALIAN_1,
        "it3": _ITALIAN_3, "it4": _ITALIAN_3, "lt1": _LITHUANIAN, "lt2": _LITHUANIAN, "tr1": _TURKISH,
        "tr2": _TURKISH}


def replace_lines(name: str) -> list[str]:
    """The ``replace`` lines of database ``name``'s English voice file (none for a database without a map)."""
    pairs = [pair.split() for pair in MAPS.get(name, "").split(";") if pair.strip()]
    return [f"replace 0 {phoneme} {other}" for phoneme, other in pairs]
