/**
 * What BERTScore needs from a model: for each text, its tokens (as the model's tokenizer splits them,
 * special tokens included) and one contextual vector per token from the chosen layer. Any encoder can
 * provide this — transformers.js over a local ONNX folder, or merglot's own engine's hidden states — and
 * the scoring code never knows which.
 */
export interface TokenEmbeddings {
  /** Token strings, in order, special tokens included ([CLS] … [SEP], <s> … </s>). */
  tokens: string[];
  /** One vector per token, all of the same length. */
  vectors: Float32Array[];
  /**
   * True for the tokens bert_score gives zero weight: the sequence-start and sequence-end markers
   * (its `cls_token_id` and `sep_token_id`). They still take part in the greedy matching, as in bert_score.
   */
  special: boolean[];
}

export interface EmbeddingProvider {
  /** A short description for reports, e.g. "transformers.js:/models/roberta-large-l17". */
  readonly name: string;
  /** Embeds each text; the result is in input order. */
  embed(texts: string[]): Promise<TokenEmbeddings[]>;
}
