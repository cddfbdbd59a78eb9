"""The token inventory of a lang dir: BPE pieces (sentencepiece) or phones.

Everything downstream of stage 3 (training, decoding, the lexicon and graphs) uses a small
part of sentencepiece's interface: ``encode(text_or_texts, out_type=int|str)``,
``decode(ids_or_pieces)``, ``get_piece_size()``, ``piece_to_id(piece)`` and
``id_to_piece(id)``. :class:`PhoneTokenizer` implements that part for phone units, so that
a phone lang dir (TIMIT) runs through exactly the same code as a BPE one.

A lang dir holds one of:

  ``bpe.model``   a sentencepiece model (``<blk>`` 0, ``<sos/eos>`` 1, ``<unk>`` 2);
  ``phones.txt``  the phone inventory, ``<blk> 0`` then one phone per line with its id.

:func:`load_tokenizer` picks whichever is there.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Union

import sentencepiece as spm

from distill.lang.bpe import BLANK, BPE_MODEL_NAME
from distill.utils.io import Pathlike, atomic_write_text

PHONES_NAME = "phones.txt"

Text = Union[str, Sequence[str]]


class PhoneTokenizer:
    """Phones as tokens: a text is a space-separated phone sequence, one token per phone.

    Args:
      phones:
        The phones, in id order starting at 1 (id 0 is ``<blk>``); unique, no white space.
    """

    def __init__(self, phones: Sequence[str]) -> None:
        if len(set(phones)) != len(phones):
            raise ValueError("Duplicate phones in the inventory")
        bad = [p for p in phones if not p or p.split() != [p] or p == BLANK or p.startswith("#")]
        if bad:
            raise ValueError(f"Unusable phone symbols {bad[:5]} (empty, with spaces, {BLANK} or #N)")
        self.pieces: List[str] = [BLANK, *phones]
        self.ids: Dict[str, int] = {p: i for i, p in enumerate(self.pieces)}

    @classmethod
    def load(cls, path: Pathlike) -> "PhoneTokenizer":
        """Read ``phones.txt`` (``symbol id`` lines, ``<blk> 0`` first, ids consecutive)."""
        path = Path(path)
        entries = []
        with path.open(encoding="utf-8") as f:
            for num, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or not fields[1].isdigit():
                    raise ValueError(f"{path}:{num}: expected 'phone id', got {line!r}")
                entries.append((fields[0], int(fields[1])))
        if not entries or entries[0] != (BLANK, 0) or [i for _, i in entries] != list(range(len(entries))):
            raise ValueError(f"{path}: must start with '{BLANK} 0' and number the phones 1, 2, ... in order")
        return cls([p for p, _ in entries[1:]])

    def save(self, path: Pathlike) -> None:
        """Write ``phones.txt`` atomically."""
        atomic_write_text(path, "".join(f"{p} {i}\n" for i, p in enumerate(self.pieces)))

    def get_piece_size(self) -> int:
        """The model's output size: the phones plus blank."""
        return len(self.pieces)

    def piece_to_id(self, piece: str) -> int:
        return self.ids[piece]

    def id_to_piece(self, index: int) -> str:
        return self.pieces[index]

    def _encode_one(self, text: str, out_type: type) -> Union[List[int], List[str]]:
        phones = text.split()
        unknown = sorted({p for p in phones if p not in self.ids or p == BLANK})
        if unknown:
            raise ValueError(f"Phones not in the inventory: {' '.join(unknown)} (in {text!r})")
        return [self.ids[p] for p in phones] if out_type is int else phones

    def encode(self, text: Text, out_type: type = int) -> Union[List, List[List]]:
        """Token ids (``out_type=int``) or phones (``out_type=str``) of one text or a list.

        Raises ``ValueError`` naming any phone that is not in the inventory.
        """
        if out_type not in (int, str):
            raise ValueError(f"out_type must be int or str, got {out_type}")
        if isinstance(text, str):
            return self._encode_one(text, out_type)
        return [self._encode_one(t, out_type) for t in text]

    def decode(self, tokens: Iterable[Union[int, str]]) -> str:
        """The phone string of token ids or phone symbols (blanks dropped)."""
        phones = [t if isinstance(t, str) else self.pieces[int(t)] for t in tokens]
        return " ".join(p for p in phones if p != BLANK)


Tokenizer = Union[spm.SentencePieceProcessor, PhoneTokenizer]


def load_tokenizer(lang_dir: Pathlike) -> Tokenizer:
    """The tokenizer of a lang dir: its ``bpe.model`` or its ``phones.txt``.

    Raises:
      FileNotFoundError: neither is there (stage 3 has not run), naming both.
    """
    lang_dir = Path(lang_dir)
    bpe_model = lang_dir / BPE_MODEL_NAME
    if bpe_model.is_file():
        sp = spm.SentencePieceProcessor()
        sp.load(str(bpe_model))
        return sp
    phones = lang_dir / PHONES_NAME
    if phones.is_file():
        return PhoneTokenizer.load(phones)
    raise FileNotFoundError(
        f"Neither {bpe_model} nor {phones} exists: run the lang stage (stage 3) first"
    )


#: The file, in an experiment directory, that names the lang dir the model was trained with.
LANG_ID_NAME = "lang_id"


def lang_identity(lang_dir: Pathlike) -> str:
    """An identity of a lang dir's token inventory: the SHA-256 (first 16 hex digits) of its
    ``bpe.model`` or ``phones.txt``. Two lang dirs of different corpora with the same number of
    tokens have different identities, so decoding can refuse a model's wrong lang dir instead
    of printing the right ids as the wrong pieces."""
    import hashlib

    lang_dir = Path(lang_dir)
    for name in (BPE_MODEL_NAME, PHONES_NAME):
        if (lang_dir / name).is_file():
            return hashlib.sha256((lang_dir / name).read_bytes()).hexdigest()[:16]
    raise FileNotFoundError(f"Neither {lang_dir / BPE_MODEL_NAME} nor {lang_dir / PHONES_NAME} exists: run the "
                            "lang stage (stage 3) first")


def trained_lang_identity(exp_dir: Pathlike) -> Union[str, None]:
    """The lang identity recorded by training in ``exp_dir`` (None for experiments from
    before it was recorded)."""
    path = Path(exp_dir) / LANG_ID_NAME
    return path.read_text().split()[0] if path.is_file() else None


def check_lang_identity(exp_dir: Pathlike, lang_dir: Pathlike) -> None:
    """Raise ``ValueError`` when ``lang_dir`` is not the lang dir ``exp_dir`` was trained with."""
    trained = trained_lang_identity(exp_dir)
    if trained is None:
        return
    given = lang_identity(lang_dir)
    if given != trained:
        recorded = (Path(exp_dir) / LANG_ID_NAME).read_text().split()
        where = f" ({recorded[1]})" if len(recorded) > 1 else ""
        raise ValueError(f"{lang_dir} is not the lang dir {exp_dir} was trained with{where}: its tokens differ "
                         f"(identity {given}, trained with {trained}); pass the model's own --lang-dir")
