namespace Lodestar.Xds.Resources;

/// <summary>A resource from the control plane failed validation; the message names the resource and the field.</summary>
internal sealed class XdsResourceException : Exception
{
    public XdsResourceException(string message)
        : base(message)
    {
    }

    public XdsResourceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public XdsResourceException()
    {
    }
}
