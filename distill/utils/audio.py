"""Audio constants shared by the corpora, features and decoding."""

#: The sampling rate of every corpus and model of the project (LibriSpeech's, TIMIT's).
SAMPLE_RATE = 16000
