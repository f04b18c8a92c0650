using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Creates a private certificate authority for one cluster and certificates it signs, as PEM files
/// for <see cref="ClusterTls"/>: <c>ca.crt</c> (+ <c>ca.key</c>, to sign more later), <c>silo.crt</c> /
/// <c>silo.key</c> for silos and <c>client.crt</c> / <c>client.key</c> for workers and operators.
/// For a first deployment and for tests; an organisation with its own PKI issues these instead.
/// </summary>
public static class ClusterCertificates
{
    /// <summary>The files <see cref="Create"/> writes, relative to its directory.</summary>
    public static IReadOnlyList<string> Files { get; } = ["ca.crt", "ca.key", "silo.crt", "silo.key", "client.crt", "client.key"];

    /// <summary>
    /// Writes a new authority and silo and client certificates into <paramref name="directory"/>
    /// (created if needed), valid for <paramref name="validity"/>. Private keys are readable by the
    /// owner only.
    /// </summary>
    public static void Create(string directory, TimeSpan validity)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (validity <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(validity), "The validity must be positive.");
        }

        Directory.CreateDirectory(directory);
        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);
        var notAfter = notBefore + validity;
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=OrleansLimiter cluster CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(notBefore, notAfter.AddDays(1));
        Write(directory, "ca.crt", ca.ExportCertificatePem(), secret: false);
        Write(directory, "ca.key", caKey.ExportPkcs8PrivateKeyPem(), secret: true);
        Issue(directory, "silo", ca, notBefore, notAfter);
        Issue(directory, "client", ca, notBefore, notAfter);
    }

    private static void Issue(string directory, string name, X509Certificate2 ca, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=OrleansLimiter {name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        // Silos both accept and open connections (to each other), so every certificate serves both ends.
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName($"orleanslimiter-{name}");
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.Create(ca, notBefore, notAfter, RandomNumberGenerator.GetBytes(16));
        Write(directory, name + ".crt", certificate.ExportCertificatePem(), secret: false);
        Write(directory, name + ".key", key.ExportPkcs8PrivateKeyPem(), secret: true);
    }

    private static void Write(string directory, string file, string pem, bool secret)
    {
        var path = Path.Combine(directory, file);
        File.WriteAllText(path, pem + "\n");
        if (secret && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
