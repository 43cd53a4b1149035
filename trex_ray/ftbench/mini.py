"""The ``ftbench-mini`` analogs: one small generated task per FT-Bench task, same output shape.

Each analog keeps its FT-Bench task's output format and metric, with a learnable hidden rule,
inputs of at most 40 words, targets of at most 10, and train-only dirt (see
``generators._dirty``: corrupted targets at the rate below, ~3 % duplicates, ~3 % over-long
inputs). Words come from ``mini_lexicon``.

=========================  ================================================  ==================  =====
analog                     input -> target                                   metric              dirt
=========================  ================================================  ==================  =====
ftbench-mini/aci           dialogue -> "mild cough 3 days , no fever ,        rouge1              10 %
                           plan antibiotics"
ftbench-mini/tomg          "add hydroxyl to N C C ." -> "N C C O"            tomg_score          10 %
ftbench-mini/omebench      reactants + conditions -> "protonation oxonium    ome_score           15 %
                           ; attack tetrahedral ; ..."
ftbench-mini/hoc           abstract sentences -> "death , genome" | none      macro_f1            15 %
ftbench-mini/sst2          review -> positive | negative                     accuracy            15 %
ftbench-mini/csbench       question, "heap a , queue b , ..." -> "queue b"   mc_accuracy         10 %
ftbench-mini/openfindata   question, "rise a , fall b , ..." -> "fall b"     mc_accuracy         10 %
ftbench-mini/econlogicqa   four shuffled events -> "c a d b"                 mc_accuracy         10 %
ftbench-mini/gta           request -> "weather ( paris )"                    tool_call_accuracy  15 %
ftbench-mini/lawbench      Chinese case -> "罪名: 盗窃" | "刑期: 12 个月" |     lawbench_score      10 %
                           "正确答案: B"
=========================  ================================================  ==================  =====

Example::

    >>> import random
    >>> text, target = ANALOGS["ftbench-mini/gta"][0](random.Random(0), False)
    >>> target.split()[1]
    '('
"""

from __future__ import annotations

from trex_ray.ftbench.mini_common import Corrupt, Make, retry
from trex_ray.ftbench.mini_struct import (
    make_csbench,
    make_econlogicqa,
    make_gta,
    make_omebench,
    make_openfindata,
    make_tomg,
    spoil_smiles,
    spoil_steps,
    wrong_answer,
    wrong_tool,
)
from trex_ray.ftbench.mini_text import (
    flip_sentiment,
    make_aci,
    make_hoc,
    make_lawbench,
    make_sst2,
    spoil_labels,
    spoil_law,
)

# name -> (make, corrupt, noise_rate, is_classification, description): generators.TaskGen's fields
ANALOGS: dict[str, tuple[Make, Corrupt, float, bool, str]] = {
    "ftbench-mini/aci": (make_aci, retry(make_aci), 0.10, False,
                         "ACI-Bench analog: write a short visit note from a doctor-patient dialogue"),
    "ftbench-mini/tomg": (make_tomg, spoil_smiles, 0.10, False,
                          "TOMG-Bench analog: generate or edit a molecule (space-separated SMILES)"),
    "ftbench-mini/omebench": (make_omebench, spoil_steps, 0.15, False,
                              "oMeBench analog: list a reaction's mechanism steps and intermediates"),
    "ftbench-mini/hoc": (make_hoc, spoil_labels, 0.15, False,
                         "HoC analog: tag an abstract with the hallmarks of cancer it mentions"),
    "ftbench-mini/sst2": (make_sst2, flip_sentiment, 0.15, True,
                          "SST-2 analog: binary sentiment of a movie review sentence"),
    "ftbench-mini/csbench": (make_csbench, wrong_answer, 0.10, True,
                             "CS-Bench analog: computer-science multiple choice and true/false"),
    "ftbench-mini/openfindata": (make_openfindata, wrong_answer, 0.10, True,
                                 "OpenFinData analog: finance multiple choice (market moves, client intent)"),
    "ftbench-mini/econlogicqa": (make_econlogicqa, wrong_answer, 0.10, False,
                                 "EconLogicQA analog: put four economic events in causal order"),
    "ftbench-mini/gta": (make_gta, wrong_tool, 0.15, False,
                         "GTA analog: answer a request with one tool call"),
    "ftbench-mini/lawbench": (make_lawbench, spoil_law, 0.10, False,
                              "LawBench analog: Chinese criminal cases (charges, prison term, choice)"),
}
