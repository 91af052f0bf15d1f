// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// The callback encryption, as WeCom documents it (加解密方案):
//
//   - the AES key is base64(EncodingAESKey + "="): 43 characters give 32
//     bytes, AES-256; the IV is the key's first 16 bytes; mode CBC;
//   - the plaintext is 16 random bytes, the message length as 4 bytes
//     big-endian, the message, then the receive id (the corp id);
//   - padding is PKCS#7 to a multiple of 32 bytes (1..32 bytes of value
//     n), the ciphertext travels base64-encoded;
//   - msg_signature is the lowercase hex SHA-1 of the token, timestamp,
//     nonce and ciphertext, sorted as strings and concatenated.

const padBlock = 32

// crypter holds one application's callback token and AES key.
type crypter struct {
	token   string
	key     []byte
	block   cipher.Block
	receive string // the receive id every message must carry
}

// newCrypter checks the EncodingAESKey: 43 characters of base64.
func newCrypter(token, encodingAESKey, receiveID string) (*crypter, error) {
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("encoding_aes_key is %d characters, WeCom's are 43", len(encodingAESKey))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("encoding_aes_key is not 43 characters of base64")
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return &crypter{token: token, key: key, block: block, receive: receiveID}, nil
}

// signature computes msg_signature over timestamp, nonce and the
// base64 ciphertext.
func (c *crypter) signature(timestamp, nonce, encrypted string) string {
	parts := []string{c.token, timestamp, nonce, encrypted}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// verify checks msg_signature in constant time.
func (c *crypter) verify(msgSignature, timestamp, nonce, encrypted string) error {
	if msgSignature == "" {
		return errors.New("no msg_signature")
	}
	want := c.signature(timestamp, nonce, encrypted)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(msgSignature)), []byte(want)) != 1 {
		return errors.New("msg_signature does not match")
	}
	return nil
}

// decrypt opens a base64 ciphertext and returns the message, after
// checking the padding, the length and the receive id.
func (c *crypter) decrypt(encrypted string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(encrypted)
	if err != nil {
		return nil, errors.New("ciphertext is not base64")
	}
	if len(raw) == 0 || len(raw)%aes.BlockSize != 0 {
		return nil, errors.New("ciphertext is not a whole number of AES blocks")
	}
	plain := make([]byte, len(raw))
	cipher.NewCBCDecrypter(c.block, c.key[:aes.BlockSize]).CryptBlocks(plain, raw)
	n := int(plain[len(plain)-1])
	if n < 1 || n > padBlock || n > len(plain) {
		return nil, errors.New("bad padding")
	}
	for _, b := range plain[len(plain)-n:] {
		if int(b) != n {
			return nil, errors.New("bad padding")
		}
	}
	plain = plain[:len(plain)-n]
	if len(plain) < 20 {
		return nil, errors.New("plaintext too short")
	}
	size := binary.BigEndian.Uint32(plain[16:20])
	if uint64(size) > uint64(len(plain)-20) {
		return nil, errors.New("message length exceeds the plaintext")
	}
	msg, receive := plain[20:20+size], plain[20+size:]
	if subtle.ConstantTimeCompare(receive, []byte(c.receive)) != 1 {
		return nil, errors.New("receive id is not this corp id")
	}
	return msg, nil
}
