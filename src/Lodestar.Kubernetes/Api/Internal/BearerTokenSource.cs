using Lodestar.Discovery;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// Supplies the bearer token: a fixed one, or one read from a file and read again after an interval because projected
/// service-account tokens rotate (client-go's cached file token source does the same). Every token read is added to the
/// client's <see cref="SecretRedactor"/>, so a rotated token is masked in server text as the first one was. Thread-safe.
/// </summary>
internal sealed partial class BearerTokenSource
{
    private readonly string? _fixedToken;
    private readonly string? _file;
    private readonly TimeSpan _refreshInterval;
    private readonly TimeProvider _timeProvider;
    private readonly string _displayName;
    private readonly ILogger _logger;
    private readonly SecretRedactor _redactor;
    private readonly Lock _gate = new();
    private string? _cached;
    private long _readAt;

    public BearerTokenSource(ClusterConfig config, TimeSpan refreshInterval, TimeProvider timeProvider, ILogger logger, SecretRedactor? redactor = null)
    {
        _redactor = redactor ?? new SecretRedactor();
        _redactor.Add(config.Token);
        _fixedToken = config.Token;
        _file = config.Token is null ? config.TokenFile : null;
        _refreshInterval = refreshInterval;
        _timeProvider = timeProvider;
        _displayName = config.DisplayName;
        _logger = logger;
    }

    /// <summary>Gets the current token, or <see langword="null"/> when the cluster uses no token.</summary>
    /// <exception cref="KubernetesApiException">The token file cannot be read and no earlier token is known.</exception>
    public string? GetToken()
    {
        if (_file is null)
        {
            return _fixedToken;
        }

        lock (_gate)
        {
            if (_cached is not null && _timeProvider.GetElapsedTime(_readAt) < _refreshInterval)
            {
                return _cached;
            }

            try
            {
                var token = File.ReadAllText(_file).Trim();
                if (token.Length == 0)
                {
                    throw new IOException("the file is empty");
                }

                if (!string.Equals(token, _cached, StringComparison.Ordinal))
                {
                    _redactor.Add(token);
                }

                _cached = token;
                _readAt = _timeProvider.GetTimestamp();
                return token;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                if (_cached is null)
                {
                    throw new KubernetesApiException($"Cannot read the bearer token file {_file} for {_displayName}: {ex.Message}", ex);
                }

                // Keep using the previous token; the kubelet may be replacing the file right now.
                Log.TokenReadFailed(_logger, _file, _displayName, ex.Message);
                return _cached;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(101, LogLevel.Warning, "Cannot read the bearer token file {File} for {Cluster}; the previous token stays in use: {Error}", EventName = "TokenReadFailed")]
        public static partial void TokenReadFailed(ILogger logger, string file, string cluster, string error);
    }
}
