"""A tiny random BERT model folder, made in place (never downloaded): a stand-in teacher source
for tests and examples, with a WordPiece vocabulary of the given texts' commonest words.

Example
-------
>>> folder = tiny_bert(tmp_dir / "bert", ["a gorgeous film", "a dull film"])
>>> sorted(p.name for p in folder.iterdir() if p.suffix == ".json")[:2]
['config.json', 'tokenizer.json']
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_bert(folder: str | Path, texts: Iterable[str] = (), words: int = 400, hidden: int = 16,
              seed: int = 0) -> Path:
    """Write a 1-layer BERT (``hidden`` wide, random weights from ``seed``) and its uncased
    WordPiece tokenizer (the ``words`` commonest words of ``texts``, then single characters)
    to ``folder``; returns it."""
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    counts = Counter(w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower()))
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = SPECIAL + chars + [f"##{c}" for c in chars]
    vocab += [w for w, _ in counts.most_common(words) if w not in vocab]
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=2 * hidden,
                        max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    tok = Tokenizer(models.WordPiece({w: i for i, w in enumerate(vocab)}, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.decoder = decoders.WordPiece()
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
                            ).save_pretrained(folder)
    return folder
