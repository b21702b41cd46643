"""Made-up but plausible names: pinyin place names and Chinese personal names."""

from __future__ import annotations

import numpy as np

_FIRST = (
    "Bei Dong Nan Xi Xin Jin Hua Yang Lian Chun Qiao Tang Feng He Kang Ping An Shun Xiang Lin "
    "Yuan Mei Song Zhu Hong Lan Ming Yu Hai Bai Long Fu Rui Jia Hui Ji Qing Chang Sheng De"
).split()
_SECOND = (
    "yuan hua xin an he lin qiao tang jing shan yang feng kang li cheng fang hu gang wan zhou "
    "bang ting ning tai xing gu mei shu lan quan chun sheng rong hong ming de le ya yi zhen"
).split()
_SURNAMES = (
    "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng "
    "Liang Xie Song Tang Han Feng Deng Cao Shen Gu Lu Jiang Qian Yu Jin"
).split()
_GIVEN = (
    "Wei Fang Min Jing Li Qiang Lei Jun Yang Yong Yan Jie Tao Ming Chao Xiu Hua Ping Gang Hui "
    "Bin Hao Ying Lan Dan Rui Xin Yu Peng Ting Jian Kai Zhen Qin Hong Lin Bo Xia Yun Hai"
).split()


# The characters the syllables above are written with in a place name, in the same order: the
# Chinese name of "Lianhua" is 莲华. One character per syllable and position, so two distinct
# pinyin names are two distinct Chinese names.
_FIRST_HANZI = "北东南西新金华阳莲春桥塘丰和康平安顺祥林园梅松竹红兰明玉海白龙福瑞嘉惠吉青长盛德"
_SECOND_HANZI = "苑华新安河林桥塘泾山杨枫康里城坊湖港湾洲浜亭宁泰兴谷梅墅澜泉春盛荣虹明德乐雅怡臻"
_HANZI = {a + b: _FIRST_HANZI[i] + _SECOND_HANZI[j]
          for i, a in enumerate(_FIRST) for j, b in enumerate(_SECOND)}


def place_name_zh(name: str) -> str:
    """The Chinese characters of a name `place_names` made ("Lianhua" -> "莲华")."""
    return _HANZI[name]


def place_names(rng: np.random.Generator, count: int) -> list[str]:
    """`count` distinct two-syllable place names such as "Lianhua" or "Dongyuan"."""
    pool = [a + b for a in _FIRST for b in _SECOND if a.lower() != b]
    if count > len(pool):
        raise ValueError(f"only {len(pool)} distinct place names, {count} asked for")
    return [pool[i] for i in rng.permutation(len(pool))[:count]]


def person_names(rng: np.random.Generator, count: int) -> list[str]:
    """Surname first, then a given name of one or two syllables: "Zhang Wei", "Chen Xiuying"."""
    names = []
    for _ in range(count):
        surname = _SURNAMES[rng.integers(len(_SURNAMES))]
        given = _GIVEN[rng.integers(len(_GIVEN))]
        if rng.random() < 0.6:
            given += _GIVEN[rng.integers(len(_GIVEN))].lower()
        names.append(f"{surname} {given}")
    return names
