using Lodestar.Discovery;
using Lodestar.Xds.Bootstrap.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Xds.Client.Internal;

/// <summary>Creates the process's one xDS client on first use, from the bootstrap the options point to, and disposes it.</summary>
internal sealed class XdsClientProvider : IAsyncDisposable, IDisposable
{
    private readonly Lazy<XdsClient> _client;

    public XdsClientProvider(IOptions<XdsOptions> options, TimeProvider timeProvider, ILoggerFactory loggerFactory)
    {
        _client = new Lazy<XdsClient>(() =>
        {
            var value = options.Value;
            var bootstrap = XdsBootstrapParser.Load(value, Environment.GetEnvironmentVariable);
            return new XdsClient(bootstrap, value, timeProvider, loggerFactory.CreateLogger<XdsClient>(), new SecretRedactor());
        });
    }

    /// <summary>Gets the client, creating it on first use.</summary>
    public XdsClient Client => _client.Value;

    /// <summary>Disposes the client for containers disposed synchronously; it waits for the stream loop to stop.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    public async ValueTask DisposeAsync()
    {
        if (_client.IsValueCreated)
        {
            await _client.Value.DisposeAsync().ConfigureAwait(false);
        }
    }
}
