using System.Net;
using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.LoadBalancing;

namespace Lodestar.Resilience.Internal;

/// <summary>
/// Reports a gRPC call's outcome from its trailers: replaces the response's content with one whose stream calls back
/// once when the body ends (the trailers are there then), fails, or is disposed before its end.
/// </summary>
internal static class GrpcTrailers
{
    /// <summary>Calls <paramref name="onOutcome"/> once: the trailers' outcome at the end of the body, a gateway failure when reading fails, <see langword="null"/> when the caller disposed the body first.</summary>
    public static void Watch(HttpResponseMessage response, GrpcStatusOptions options, Action<AttemptOutcome?, object?> onOutcome, object? state)
        => response.Content = new WatchedContent(response, options, onOutcome, null, state);

    /// <summary>
    /// Calls <paramref name="onOutcome"/> once with the public form of the outcome: the trailers' outcome at the end of
    /// the body, <see cref="EndpointOutcome.GatewayFailure"/> when reading fails, <see cref="EndpointOutcome.Abandoned"/>
    /// when the caller disposed the body first. Converts in place, so the caller's callback and state need no wrapper.
    /// </summary>
    public static void Watch(HttpResponseMessage response, GrpcStatusOptions options, Action<EndpointOutcome, object?> onOutcome, object? state)
        => response.Content = new WatchedContent(response, options, null, onOutcome, state);

    private sealed class WatchedContent : HttpContent
    {
        private readonly HttpResponseMessage _response;
        private readonly HttpContent _inner;
        private readonly GrpcStatusOptions _options;
        private readonly Action<AttemptOutcome?, object?>? _onOutcome;
        private readonly Action<EndpointOutcome, object?>? _onPublicOutcome;
        private readonly object? _state;
        private int _reported;

        public WatchedContent(HttpResponseMessage response, GrpcStatusOptions options, Action<AttemptOutcome?, object?>? onOutcome,
            Action<EndpointOutcome, object?>? onPublicOutcome, object? state)
        {
            _response = response;
            _inner = response.Content;
            _options = options;
            _onOutcome = onOutcome;
            _onPublicOutcome = onPublicOutcome;
            _state = state;
            foreach (var header in _inner.Headers.NonValidated)
            {
                foreach (var value in header.Value)
                {
                    Headers.TryAddWithoutValidation(header.Key, value);
                }
            }
        }

        public void Report(AttemptOutcome? outcome)
        {
            if (Interlocked.Exchange(ref _reported, 1) != 0)
            {
                return;
            }

            if (_onPublicOutcome is not null)
            {
                _onPublicOutcome(outcome is { } result ? FailureClassifier.ToPublic(result) : EndpointOutcome.Abandoned, _state);
            }
            else
            {
                _onOutcome!(outcome, _state);
            }
        }

        public void ReportEnd() => Report(FailureClassifier.ClassifyGrpcTrailers(_response, _options));

        protected override Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken)
        {
            if (IsTransportContent(_inner))
            {
                // Its stream is there once the headers are: reading it synchronously spares the inner content's task.
                try
                {
                    return Task.FromResult<Stream>(new WatchedStream(_inner.ReadAsStream(cancellationToken), this));
                }
                catch (OperationCanceledException ex) when (ex.CancellationToken.IsCancellationRequested)
                {
                    return Task.FromCanceled<Stream>(ex.CancellationToken);
                }
                catch (Exception ex)
                {
                    return Task.FromException<Stream>(ex);
                }
            }

            return ReadInnerAsync(cancellationToken);
        }

        protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            try
            {
                await _inner.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
                ReportEnd();
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                Report(AttemptOutcome.GatewayFailure);
                throw;
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                Report(null);
                _inner.Dispose();
            }

            base.Dispose(disposing);
        }

        /// <summary>
        /// Whether <paramref name="content"/> is the body <see cref="SocketsHttpHandler"/> answers with, whose stream is
        /// ready once the headers are (other contents may buffer when read synchronously).
        /// </summary>
        private static bool IsTransportContent(HttpContent content)
            => content.GetType() is { Name: "HttpConnectionResponseContent" } type && type.Assembly == typeof(SocketsHttpHandler).Assembly;

        private async Task<Stream> ReadInnerAsync(CancellationToken cancellationToken)
            => new WatchedStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), this);
    }

    private sealed class WatchedStream(Stream inner, WatchedContent owner) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int read;
            try
            {
                read = inner.Read(buffer);
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException)
            {
                owner.Report(AttemptOutcome.GatewayFailure);
                throw;
            }

            if (read == 0 && buffer.Length > 0)
            {
                owner.ReportEnd();
            }

            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int read;
            try
            {
                read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException && !cancellationToken.IsCancellationRequested)
            {
                // The stream broke after the server answered: a failure after connecting, as a broken connection is.
                owner.Report(AttemptOutcome.GatewayFailure);
                throw;
            }

            if (read == 0 && buffer.Length > 0)
            {
                owner.ReportEnd();
            }

            return read;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                owner.Report(null);
                inner.Dispose();
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            owner.Report(null);
            await inner.DisposeAsync().ConfigureAwait(false);
            await base.DisposeAsync().ConfigureAwait(false);
        }
    }
}
