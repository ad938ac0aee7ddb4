using System.Buffers;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// Splits a watch response into lines as bytes arrive, without buffering the whole response: one pooled buffer holds
/// at most the line being read (it grows for an unusually long line, up to <see cref="MaxLineBytes"/>).
/// </summary>
internal sealed class WatchLineReader : IDisposable
{
    public const int MaxLineBytes = 64 * 1024 * 1024;

    private readonly Stream _stream;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private int _scanned;

    public WatchLineReader(Stream stream, int initialBufferSize = 16 * 1024)
    {
        _stream = stream;
        _buffer = ArrayPool<byte>.Shared.Rent(initialBufferSize);
    }

    /// <summary>
    /// Reads the next non-empty line (without its newline). The memory stays valid until the next call. Returns
    /// <see langword="false"/> at the end of the stream; <c>Truncated</c> then tells whether a partial
    /// line was left unfinished (the stream was cut mid-event).
    /// </summary>
    public async ValueTask<(bool Ok, ReadOnlyMemory<byte> Line, bool Truncated)> ReadLineAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var newline = Array.IndexOf(_buffer, (byte)'\n', _scanned, _end - _scanned);
            if (newline >= 0)
            {
                var line = new ReadOnlyMemory<byte>(_buffer, _start, newline - _start);
                _start = newline + 1;
                _scanned = _start;
                if (line.Length > 0 && line.Span[^1] == (byte)'\r')
                {
                    line = line[..^1];
                }

                if (line.IsEmpty)
                {
                    continue;
                }

                return (true, line, false);
            }

            _scanned = _end;
            MakeRoom();
            var read = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                var truncated = _end > _start && _buffer.AsSpan(_start, _end - _start).ContainsAnyExcept((byte)' ', (byte)'\r', (byte)'\t');
                _start = _end = _scanned = 0;
                return (false, default, truncated);
            }

            _end += read;
        }
    }

    /// <summary>Gets whether part of a line has arrived without its end (a cut now is a cut mid-event).</summary>
    public bool HasPartialLine => _end > _start;

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void MakeRoom()
    {
        if (_end < _buffer.Length)
        {
            return;
        }

        var pending = _end - _start;
        if (_start > 0 && pending < _buffer.Length / 2)
        {
            // Slide the partial line to the front rather than growing.
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, pending);
        }
        else
        {
            if (_buffer.Length >= MaxLineBytes)
            {
                throw new InvalidDataException($"A watch event is longer than {MaxLineBytes} bytes.");
            }

            var larger = ArrayPool<byte>.Shared.Rent(_buffer.Length * 2);
            Buffer.BlockCopy(_buffer, _start, larger, 0, pending);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }

        _scanned -= _start;
        _start = 0;
        _end = pending;
    }
}
