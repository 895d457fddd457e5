"""What the default recipe reads from the training data: long texts raise tokenizer.max_length
and keep the CNN on their start (model.conv_tokens); short texts leave the recipe as it is; a
user's --set or estimator parameter always wins; both doors read the data the same way."""

from __future__ import annotations

import random
from argparse import Namespace

import numpy as np

from conftest import write_jsonl
from textcnn.estimator import TextCNNClassifier
from textcnn.modality import TextModality
from textcnn.recipes import data_settings, recipe_config, train_config
from textcnn.recipes.shape import CONV_TOKENS, DataShape, measure, shaped_settings

WORDS = ["market", "price", "rally", "bank", "vote", "court", "match", "goal", "engine", "chip"]


def long_folder(root, words_per_text=700, rows=40):
    root.mkdir()
    rng = random.Random(0)
    rows_ = [{"text": " ".join(rng.choice(WORDS) for _ in range(words_per_text)),
              "label": i % 2} for i in range(rows)]
    write_jsonl(root / "train.jsonl", rows_)
    write_jsonl(root / "test.jsonl", rows_[:10])
    return root


def args_for(folder):
    return Namespace(config=None, dataset=str(folder), text_column=None, label_column=None)


def test_the_90th_percentile_sets_the_length_and_the_cnn_keeps_the_start():
    assert shaped_settings(DataShape(100, 2, 256), max_length=256) == {}
    assert shaped_settings(DataShape(100, 2, 257), max_length=256) == \
        {"tokenizer.max_length": 512, "model.conv_tokens": CONV_TOKENS,
         "model.ngram_punctuation": False, "train.loss": "squared_hinge",
         "model.ngram_l2": 0.01}  # 1 / rows
    # a run distilling a teacher keeps cross-entropy, which its soft targets need
    assert shaped_settings(DataShape(100, 2, 257), max_length=256, teacher=True) == \
        {"tokenizer.max_length": 512, "model.conv_tokens": CONV_TOKENS,
         "model.ngram_punctuation": False}
    assert shaped_settings(DataShape(100, 2, 90_000), max_length=256)["tokenizer.max_length"] \
        == 1024


def test_measure_counts_untruncated_tokens_of_the_recipe_tokenizer():
    config = recipe_config("in-memory")
    tokenizer = TextModality.pretrained_tokenizer(config)  # truncates at 256
    texts = [" ".join(["market"] * n) for n in (10, 20, 600, 700, 800) * 4]
    shape = measure(texts, [0, 1] * 10, tokenizer)
    assert shape.rows == 20 and shape.classes == 2
    assert 700 < shape.p90_tokens <= 802  # [CLS] + 800 words + [SEP] at most
    multi_hot = np.array([[1, 0, 1]] * 20, dtype=np.float32)
    assert measure(texts, multi_hot, tokenizer).classes == 3


def test_the_cli_door_reads_long_texts_and_a_set_item_wins(tmp_path, capsys):
    folder = long_folder(tmp_path / "long")
    config = train_config(args_for(folder))
    assert (config.tokenizer.max_length, config.model.conv_tokens) == (1024, CONV_TOKENS)
    assert (config.train.loss, config.model.ngram_l2) == ("squared_hinge", 1 / 40)
    assert config.model.ngram_punctuation is False  # the wide branch reads words
    assert "90% of texts within" in capsys.readouterr().err
    config = train_config(args_for(folder), ["tokenizer.max_length=300"])
    assert (config.tokenizer.max_length, config.model.conv_tokens) == (300, CONV_TOKENS)


def test_short_texts_keep_the_recipe(tmp_path, capsys):
    folder = long_folder(tmp_path / "short", words_per_text=12)
    assert train_config(args_for(folder)).to_dict() == recipe_config(str(folder)).to_dict()
    assert "90% of texts within" in capsys.readouterr().err


def test_the_estimator_reads_the_same_settings_and_its_parameters_win():
    texts = [" ".join(["market"] * 700)] * 20
    settings, line = data_settings(recipe_config("in-memory"), texts, [0, 1] * 10)
    assert settings == {"tokenizer.max_length": 1024, "model.conv_tokens": CONV_TOKENS,
                        "model.ngram_punctuation": False, "train.loss": "squared_hinge",
                        "model.ngram_l2": 0.05}
    assert line.startswith("default recipe: 20 training rows, 2 classes")
    config = TextCNNClassifier(max_length=300).to_config(settings)
    assert (config.tokenizer.max_length, config.model.conv_tokens) == (300, CONV_TOKENS)
    assert TextCNNClassifier().to_config(settings).tokenizer.max_length == 1024


def test_a_run_with_a_teacher_keeps_cross_entropy_on_long_texts():
    config = recipe_config("in-memory", overrides=["distill.teacher=minilm"])
    settings, _ = data_settings(config, [" ".join(["market"] * 700)] * 20, [0, 1] * 10)
    assert settings == {"tokenizer.max_length": 1024, "model.conv_tokens": CONV_TOKENS,
                        "model.ngram_punctuation": False}
