using Lodestar.Discovery;
using Lodestar.Xds.Bootstrap.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Xds.Client.Internal;

/// <summary>Creates the process's one xDS client on first use, from the bootstrap the options point to, and disposes it.</summary>
internal sealed class XdsClientProvider : IAsyncDisposable, IDisposable
{
    private readonly Lazy<XdsClient> _client;
    private readonly SecretRedactor _redactor = new();

    public XdsClientProvider(IOptions<XdsOptions> options, TimeProvider timeProvider, ILoggerFactory loggerFactory)
    {
        _client = new Lazy<XdsClient>(() =>
        {
            var value = options.Value;
            var bootstrap = XdsBootstrapParser.Load(value, Environment.GetEnvironmentVariable);
            return new XdsClient(bootstrap, value, timeProvider, loggerFactory.CreateLogger<XdsClient>(), _redactor);
        });
    }

    /// <summary>Gets the client, creating it on first use.</summary>
    public XdsClient Client => _client.Value;

    /// <summary>Gets the client if something has used it already, else <see langword="null"/> (for diagnostics, which must not start it).</summary>
    public XdsClient? CreatedClient => _client.IsValueCreated ? _client.Value : null;

    /// <summary>Gets the redactor the client masks with, which knows the call-credential tokens it has read.</summary>
    public SecretRedactor Redactor => _redactor;

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
