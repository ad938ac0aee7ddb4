using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Numerics;
using Lodestar.Discovery;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// Splits a watch response into lines as bytes arrive, without buffering the whole response: one pooled buffer holds
/// at most the line being read. It grows for a long line, but never beyond the line cap: a line longer than the cap
/// fails as soon as the cap is crossed, so a hostile or broken server cannot make the reader hold more than that.
/// </summary>
internal sealed class WatchLineReader : IWatchEventReader
{
    /// <summary>The line cap when none is given.</summary>
    public const int DefaultMaxLineBytes = 16 * 1024 * 1024;

    private readonly Stream _stream;
    private readonly int _maxLineBytes;
    private readonly string _description;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private int _scanned;

    /// <summary>Initializes a reader.</summary>
    /// <param name="stream">The watch response body.</param>
    /// <param name="initialBufferSize">The first buffer's size; it grows (doubling, up to the cap) for longer lines.</param>
    /// <param name="maxLineBytes">The most bytes one line (one event) may have, without its newline.</param>
    /// <param name="description">What is read, for the error (the API server and the watch); must hold no secret.</param>
    public WatchLineReader(Stream stream, int initialBufferSize = 16 * 1024, long maxLineBytes = DefaultMaxLineBytes, string description = "The watch stream")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLineBytes, 1);
        _stream = stream;
        _maxLineBytes = (int)Math.Min(maxLineBytes, Array.MaxLength - 1);
        _description = description;
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(initialBufferSize, _maxLineBytes + 1));
    }

    /// <summary>Gets the line cap in bytes.</summary>
    public int MaxLineBytes => _maxLineBytes;

    /// <summary>
    /// Reads the next non-empty line (without its newline). The memory stays valid until the next call. Returns
    /// <see langword="false"/> at the end of the stream; <c>Truncated</c> then tells whether a partial
    /// line was left unfinished (the stream was cut mid-event).
    /// </summary>
    /// <exception cref="RegistryResponseTooLargeException">A line is longer than <see cref="MaxLineBytes"/>.</exception>
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

                if (line.Length > _maxLineBytes)
                {
                    throw TooLong();
                }

                return (true, line, false);
            }

            if (_end - _start > _maxLineBytes)
            {
                // More than the cap has arrived without a newline: the line is too long whatever follows.
                throw TooLong();
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

    /// <inheritdoc/>
    int IWatchEventReader.MaxEventBytes => _maxLineBytes;

    /// <inheritdoc/>
    bool IWatchEventReader.HasPartialEvent => HasPartialLine;

    /// <inheritdoc/>
    ValueTask<(bool Ok, ReadOnlyMemory<byte> Event, bool Truncated)> IWatchEventReader.ReadEventAsync(CancellationToken cancellationToken)
        => ReadLineAsync(cancellationToken);

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        Release(buffer);
    }

    private static void Release(byte[] buffer)
    {
        // Only power-of-two arrays belong to the pool's buckets; an exactly sized last buffer is left to the GC.
        if (buffer.Length > 0 && BitOperations.IsPow2(buffer.Length))
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private RegistryResponseTooLargeException TooLong()
        => new(string.Create(CultureInfo.InvariantCulture,
            $"{_description}: a watch event is larger than the limit of {_maxLineBytes} bytes; it was not read. Raise Lodestar:Kubernetes:MaxWatchEventBytes if the API server really sends objects this large."))
        {
            Limit = _maxLineBytes,
        };

    private void MakeRoom()
    {
        if (_end < _buffer.Length)
        {
            return;
        }

        var pending = _end - _start;
        if (_start > 0 && (pending < _buffer.Length / 2 || _buffer.Length > _maxLineBytes))
        {
            // Slide the partial line to the front rather than growing (always, once the buffer holds the cap).
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, pending);
        }
        else
        {
            // Room for the cap plus one byte is all a line can ever need: one byte past the cap proves it too long.
            var size = (int)Math.Min((long)_buffer.Length * 2, _maxLineBytes + 1L);
            Debug.Assert(size > _buffer.Length, "a full buffer of the cap's size has already failed the length check");

            // The pool rounds sizes up to a power of two: a last step to the cap is allocated exactly instead, so the
            // reader never holds twice the cap.
            var larger = BitOperations.IsPow2(size) ? ArrayPool<byte>.Shared.Rent(size) : GC.AllocateUninitializedArray<byte>(size);
            Buffer.BlockCopy(_buffer, _start, larger, 0, pending);
            Release(_buffer);
            _buffer = larger;
        }

        _scanned -= _start;
        _start = 0;
        _end = pending;
    }
}
