namespace Lodestar.Xds.Client;

/// <summary>
/// Receives what the xDS client learns about one resource (type and name). Calls come one at a time from the client's
/// callback queue, never under its lock; implementations must not block.
/// </summary>
internal interface IXdsWatcher
{
    /// <summary>A new valid version of the resource (for a wildcard watch, an <see cref="XdsResourceSet"/> of every resource).</summary>
    void OnResourceChanged(object resource);

    /// <summary>
    /// A problem that leaves the last accepted version in force: the stream failed, or a newer version of the resource was
    /// rejected (NACKed). The message names the control plane and the resource and holds no secret.
    /// </summary>
    void OnError(Exception error);

    /// <summary>The control plane said the resource does not exist, removed it, or did not send it in time.</summary>
    void OnResourceDoesNotExist();
}

/// <summary>Every accepted resource of one type, delivered to wildcard watchers.</summary>
/// <param name="TypeUrl">The resource type.</param>
/// <param name="Resources">The validated models by resource name.</param>
internal sealed record XdsResourceSet(string TypeUrl, IReadOnlyDictionary<string, object> Resources);

/// <summary>An <see cref="IXdsWatcher"/> made of delegates.</summary>
internal sealed class XdsWatcher<T> : IXdsWatcher
    where T : class
{
    private readonly Action<T> _onChanged;
    private readonly Action<Exception>? _onError;
    private readonly Action? _onDoesNotExist;

    public XdsWatcher(Action<T> onChanged, Action<Exception>? onError = null, Action? onDoesNotExist = null)
    {
        _onChanged = onChanged;
        _onError = onError;
        _onDoesNotExist = onDoesNotExist;
    }

    public void OnResourceChanged(object resource) => _onChanged((T)resource);

    public void OnError(Exception error) => _onError?.Invoke(error);

    public void OnResourceDoesNotExist() => _onDoesNotExist?.Invoke();
}

/// <summary>A failure of the xDS client: the stream to the control plane, or a resource the client rejected.</summary>
internal sealed class XdsClientException : Exception
{
    public XdsClientException(string message)
        : base(message)
    {
    }

    public XdsClientException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public XdsClientException()
    {
    }
}
