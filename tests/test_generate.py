from seal.generate import SamplingParams, decode_new_tokens, generate_batch, greedy_answers, sample_completions


def test_sampling_is_seeded_and_batch_sized(loaded_random):
    m, tok = loaded_random.model, loaded_random.tokenizer
    params = SamplingParams(1.0, 0.95, 12)
    a = generate_batch(m, tok, ["the city", "a river of the"], params, greedy=False, seed=3)
    b = generate_batch(m, tok, ["the city", "a river of the"], params, greedy=False, seed=3)
    c = generate_batch(m, tok, ["the city", "a river of the"], params, greedy=False, seed=4)
    assert a == b and a != c
    out = sample_completions(m, tok, ["the city", "a river"], 3, params, seed=0, batch_size=4)
    assert [len(x) for x in out] == [3, 3]


def test_greedy_is_batch_invariant(loaded_random):
    m, tok = loaded_random.model, loaded_random.tokenizer
    prompts = ["the city of", "who founded the company in the year", "a"]
    together = greedy_answers(m, tok, prompts, 8, batch_size=3)
    alone = [greedy_answers(m, tok, [p], 8, batch_size=1)[0] for p in prompts]
    assert together == alone


def test_decode_stops_at_eos(loaded_random):
    import torch

    tok = loaded_random.tokenizer
    ids = tok("the city")["input_ids"] + [tok.eos_token_id] + tok("river")["input_ids"]
    assert decode_new_tokens(tok, torch.tensor(ids), {tok.eos_token_id}) == "the city"
