using System.Globalization;
using System.Text.Json;

namespace Lodestar.Consul.Internal;

/// <summary>
/// Checks that a JSON answer is an array before it is read as one: a streaming reader of array elements takes a
/// top-level <c>null</c> for an empty array, which from a registry would look like a service without instances.
/// </summary>
internal static class JsonArrayStart
{
    private const int ChunkSize = 256;

    /// <summary>
    /// Reads <paramref name="stream"/> up to its first significant byte (past white space and a UTF-8 byte order mark)
    /// and returns the bytes read from that one on, which the caller reads again before the rest of the stream.
    /// </summary>
    /// <exception cref="JsonException">The stream is empty or white space, or its first value is not an array.</exception>
    public static async Task<byte[]> ReadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[ChunkSize];
        var first = true;
        while (true)
        {
            var read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new JsonException("the answer is empty; Consul answers a JSON array.");
            }

            var start = first && read >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF ? 3 : 0;
            first = false;
            for (var i = start; i < read; i++)
            {
                switch (buffer[i])
                {
                    case (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n':
                        continue;
                    case (byte)'[':
                        return buffer[i..read];
                    default:
                        throw new JsonException($"the answer is not a JSON array (it starts with {Describe(buffer[i])}).");
                }
            }

            // Only white space so far; the size limit of the stream bounds how long this goes on.
        }
    }

    private static string Describe(byte value) => value is >= 0x21 and < 0x7F
        ? "'" + (char)value + "'"
        : "byte 0x" + value.ToString("X2", CultureInfo.InvariantCulture);
}

/// <summary>A read-only stream that returns some bytes already read, then the rest of another stream (which it does not dispose).</summary>
internal sealed class PrefixedStream : Stream
{
    private readonly byte[] _prefix;
    private readonly Stream _inner;
    private int _position;

    public PrefixedStream(byte[] prefix, Stream inner)
    {
        _prefix = prefix;
        _inner = inner;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_position < _prefix.Length)
        {
            return CopyPrefix(buffer);
        }

        return _inner.Read(buffer);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_position < _prefix.Length)
        {
            return new ValueTask<int>(CopyPrefix(buffer.Span));
        }

        return _inner.ReadAsync(buffer, cancellationToken);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private int CopyPrefix(Span<byte> buffer)
    {
        var count = Math.Min(buffer.Length, _prefix.Length - _position);
        _prefix.AsSpan(_position, count).CopyTo(buffer);
        _position += count;
        return count;
    }
}
