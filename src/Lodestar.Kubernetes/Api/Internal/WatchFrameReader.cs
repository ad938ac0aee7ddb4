using System.Buffers;
using System.Globalization;
using Lodestar.Discovery;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>What reads one watch event at a time from a watch response: JSON lines or protobuf frames.</summary>
internal interface IWatchEventReader : IDisposable
{
    /// <summary>Gets the most bytes one event may have.</summary>
    int MaxEventBytes { get; }

    /// <summary>Gets whether part of an event has arrived without its end (a cut now is a cut mid-event).</summary>
    bool HasPartialEvent { get; }

    /// <summary>
    /// Reads the next event's bytes, valid until the next call. Returns <see langword="false"/> at the end of the stream;
    /// <c>Truncated</c> then tells whether an event was left unfinished.
    /// </summary>
    /// <exception cref="RegistryResponseTooLargeException">An event is larger than <see cref="MaxEventBytes"/>.</exception>
    ValueTask<(bool Ok, ReadOnlyMemory<byte> Event, bool Truncated)> ReadEventAsync(CancellationToken cancellationToken);
}

/// <summary>
/// Splits a protobuf watch response (<c>application/vnd.kubernetes.protobuf;stream=watch</c>) into frames: a 4-byte
/// big-endian length, then that many bytes of <c>metav1.WatchEvent</c>. The length is checked against the cap before
/// any of the frame is read, so an oversized frame fails at once with nothing buffered; one pooled buffer, grown to the
/// largest frame seen, holds the frame being read.
/// </summary>
internal sealed class WatchFrameReader : IWatchEventReader
{
    private readonly Stream _stream;
    private readonly int _maxFrameBytes;
    private readonly string _description;
    private readonly byte[] _header = new byte[KubernetesProtobuf.FrameHeaderBytes];
    private byte[] _buffer;
    private bool _partial;

    /// <summary>Initializes a reader.</summary>
    /// <param name="stream">The watch response body.</param>
    /// <param name="maxFrameBytes">The most bytes one frame may have, without its length prefix.</param>
    /// <param name="description">What is read, for the error (the API server and the watch); must hold no secret.</param>
    public WatchFrameReader(Stream stream, long maxFrameBytes, string description)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxFrameBytes, 1);
        _stream = stream;
        _maxFrameBytes = (int)Math.Min(maxFrameBytes, Array.MaxLength);
        _description = description;
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(16 * 1024, _maxFrameBytes));
    }

    /// <inheritdoc/>
    public int MaxEventBytes => _maxFrameBytes;

    /// <inheritdoc/>
    public bool HasPartialEvent => _partial;

    /// <inheritdoc/>
    public async ValueTask<(bool Ok, ReadOnlyMemory<byte> Event, bool Truncated)> ReadEventAsync(CancellationToken cancellationToken)
    {
        var headerRead = await FillAsync(_header, cancellationToken).ConfigureAwait(false);
        if (headerRead < _header.Length)
        {
            _partial = false;
            return (false, default, headerRead > 0);
        }

        var length = KubernetesProtobuf.ReadFrameLength(_header);
        if (length > (uint)_maxFrameBytes)
        {
            throw new RegistryResponseTooLargeException(string.Create(CultureInfo.InvariantCulture,
                $"{_description}: a watch event is larger than the limit of {_maxFrameBytes} bytes (its protobuf frame announces {length}); it was not read. Raise Lodestar:Kubernetes:MaxWatchEventBytes if the API server really sends objects this large."))
            {
                Limit = _maxFrameBytes,
            };
        }

        var size = (int)length;
        if (_buffer.Length < size)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
            _buffer = ArrayPool<byte>.Shared.Rent(size);
        }

        _partial = size > 0;
        var read = await FillAsync(_buffer.AsMemory(0, size), cancellationToken).ConfigureAwait(false);
        if (read < size)
        {
            _partial = false;
            return (false, default, true);
        }

        _partial = false;
        return (true, _buffer.AsMemory(0, size), false);
    }

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        if (buffer.Length > 0)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads until <paramref name="target"/> is full or the stream ends; returns the bytes read.</summary>
    private async ValueTask<int> FillAsync(Memory<byte> target, CancellationToken cancellationToken)
    {
        var total = 0;
        while (total < target.Length)
        {
            var read = await _stream.ReadAsync(target[total..], cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }

            total += read;
            _partial = true;
        }

        return total;
    }
}
